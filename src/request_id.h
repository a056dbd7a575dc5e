// Request ids: the client's X-Request-Id when it is a sane token, else a fresh random one.
#ifndef ORDERFLOW_REQUEST_ID_H_
#define ORDERFLOW_REQUEST_ID_H_

#include <string>

namespace orderflow {

// Returns `given` when it is 1..128 characters of [A-Za-z0-9._:-]; otherwise a new id of 32
// hex digits. `given` may be null (no header).
std::string RequestIdFor(const std::string* given);

}  // namespace orderflow

#endif  // ORDERFLOW_REQUEST_ID_H_
