// The bytes of an HTTP/1.1 response, written by the connection itself (http/connection.h says
// why not through Pistache's transport).
#ifndef ORDERFLOW_HTTP_RESPONSE_H_
#define ORDERFLOW_HTTP_RESPONSE_H_

#include <string>
#include <utility>
#include <vector>

namespace orderflow {
namespace http {

struct WireResponse {
  int status = 200;
  std::string content_type;
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // values are ours: no CR or LF
  bool head = false;       // answer to HEAD: Content-Length of the body, no body
  bool keep_alive = true;  // Connection: keep-alive, else close
};

// Status line, Content-Type, Content-Length, Connection, the headers, the blank line, the body.
std::string Serialize(const WireResponse& response);

// "Not Found" for 404; "Unknown" for a status without a phrase here.
const char* ReasonPhrase(int status);

}  // namespace http
}  // namespace orderflow

#endif  // ORDERFLOW_HTTP_RESPONSE_H_
