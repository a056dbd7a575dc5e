#include "status.h"

#include <algorithm>
#include <cstring>

namespace orderflow {

Status Status::FromServerMessage(std::string sqlstate, const std::string& text) {
  if (sqlstate.size() != 5) sqlstate = "XX000";
  // The sentence ends at the first label, not at the first newline: an order id the client sent
  // may hold a newline.
  size_t end = text.size();
  for (const char* label :
       {"\nDETAIL:  ", "\nHINT:  ", "\nQUERY:  ", "\nCONTEXT:  ", "\nLINE ", "\nLOCATION:  "}) {
    end = std::min(end, text.find(label));
  }
  std::string sentence = text.substr(0, end);
  for (const char* severity : {"ERROR:", "FATAL:"}) {
    if (sentence.rfind(severity, 0) == 0) {
      sentence.erase(0, std::strlen(severity));
      break;
    }
  }
  sentence.erase(0, sentence.find_first_not_of(" \t"));
  sentence.erase(sentence.find_last_not_of(" \t\r\n") + 1);
  if (sentence.empty()) sentence = "the database refused the request";
  return Error(std::move(sqlstate), std::move(sentence), text);
}

std::string Status::ToString() const {
  if (ok()) return "OK";
  std::string out = sqlstate_ + ": " + message_;
  if (!detail_.empty() && detail_ != message_) out += " [" + detail_ + "]";
  return out;
}

}  // namespace orderflow
