#include "webhook_receiver.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "harness.h"

namespace orderflow_test {

namespace {

HttpResponse Control(uint16_t port, const std::string& method, const std::string& path,
                     const std::string& body = "") {
  HttpRequest request;
  request.method = method;
  request.path = path;
  request.body = body;
  request.timeout_ms = 10000;
  return SendHttp(port, request);
}

std::string Base64Decode(const std::string& text) {
  std::string out(text.size() / 4 * 3 + 3, '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(&out[0]),
                                reinterpret_cast<const unsigned char*>(text.data()),
                                static_cast<int>(text.size()));
  if (n < 0) return "";
  size_t padding = 0;
  for (size_t i = text.size(); i > 0 && text[i - 1] == '='; --i) ++padding;
  out.resize(static_cast<size_t>(n) - padding);  // EVP_DecodeBlock counts padding as zeros
  return out;
}

std::string Base64Encode(const unsigned char* data, size_t size) {
  std::string out((size + 2) / 3 * 4 + 1, '\0');
  const int n =
      EVP_EncodeBlock(reinterpret_cast<unsigned char*>(&out[0]), data, static_cast<int>(size));
  out.resize(static_cast<size_t>(n));
  return out;
}

long Int64(const rapidjson::Value& object, const char* name) {
  const auto member = object.FindMember(name);
  return member != object.MemberEnd() && member->value.IsInt64() ? member->value.GetInt64() : 0;
}

std::string String(const rapidjson::Value& object, const char* name) {
  const auto member = object.FindMember(name);
  return member != object.MemberEnd() && member->value.IsString() ? member->value.GetString() : "";
}

}  // namespace

long WebhookDeliveries::Duplicates() const {
  long duplicates = 0;
  for (const auto& [id, count] : ids) {
    if (count.accepted > 1) ++duplicates;
  }
  return duplicates;
}

WebhookReceiver::~WebhookReceiver() {
  Stop();
  if (!dir_.empty()) {
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }
}

void WebhookReceiver::Start() {
  char pattern[] = "/tmp/orderflow-hooks-XXXXXX";
  ASSERT_NE(mkdtemp(pattern), nullptr) << "a directory for the webhook receiver";
  dir_ = pattern;
  Launch(0);
}

void WebhookReceiver::Restart() {
  ASSERT_FALSE(dir_.empty()) << "Restart() after Start()";
  Stop();
  Launch(port_);
}

void WebhookReceiver::Launch(uint16_t port) {
  const std::string port_file = dir_ + "/port";
  const std::string state_file = dir_ + "/state.json";
  const std::string log_file = dir_ + "/log";
  const std::string script = std::string(ORDERFLOW_SOURCE_DIR) + "/tests/sim/webhook_sim.py";
  const std::string port_text = std::to_string(port);
  ::unlink(port_file.c_str());
  pid_ = fork();
  ASSERT_GE(pid_, 0) << "fork";
  if (pid_ == 0) {
    const int out = ::open(log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (out >= 0) {
      dup2(out, 1);
      dup2(out, 2);
    }
    // --exit-with-parent: a test that crashes leaves no receiver behind.
    execlp("python3", "python3", script.c_str(), "--port", port_text.c_str(), "--port-file",
           port_file.c_str(), "--state-file", state_file.c_str(), "--exit-with-parent",
           static_cast<char*>(nullptr));
    _exit(127);
  }
  uint16_t bound = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
  while (std::chrono::steady_clock::now() < deadline) {
    std::ifstream in(port_file);
    int value = 0;
    if (in >> value && value > 0) {
      bound = static_cast<uint16_t>(value);
      break;
    }
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {  // it died (the port taken?)
      pid_ = -1;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_NE(bound, 0) << "the webhook receiver wrote its port (log in " << log_file << ")";
  ASSERT_TRUE(port == 0 || bound == port) << "restarted on " << bound << ", not " << port;
  port_ = bound;
  ASSERT_EQ(Control(port_, "GET", "/_sim/health").status, 200) << "the webhook receiver answers";
}

void WebhookReceiver::Stop() {
  if (pid_ > 0) {
    kill(pid_, SIGTERM);
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
  }
}

void WebhookReceiver::Kill() {
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
  }
}

std::string WebhookReceiver::BaseUrl() const { return "http://127.0.0.1:" + std::to_string(port_); }

std::string WebhookReceiver::Url(const std::string& name) const {
  return BaseUrl() + "/hooks/" + name;
}

void WebhookReceiver::AddEndpoint(const std::string& name,
                                  const std::vector<std::string>& secrets) {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
  writer.StartObject();
  writer.Key("name");
  writer.String(name.c_str(), static_cast<rapidjson::SizeType>(name.size()));
  writer.Key("secrets");
  writer.StartArray();
  for (const std::string& secret : secrets) {
    writer.String(secret.c_str(), static_cast<rapidjson::SizeType>(secret.size()));
  }
  writer.EndArray();
  writer.EndObject();
  const HttpResponse response = Control(port_, "POST", "/_sim/endpoints", buffer.GetString());
  ASSERT_EQ(response.status, 200) << "the receiver registered " << name << ": " << response.body;
}

void WebhookReceiver::SetFault(const std::string& json) {
  const HttpResponse response = Control(port_, "POST", "/_sim/faults", json);
  ASSERT_EQ(response.status, 200) << "the receiver took the fault " << json << ": "
                                  << response.body;
}

void WebhookReceiver::ClearFault(const std::string& name) {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
  writer.StartObject();
  writer.Key("endpoint");
  writer.String(name.c_str(), static_cast<rapidjson::SizeType>(name.size()));
  writer.EndObject();
  SetFault(buffer.GetString());
}

void WebhookReceiver::Reset() {
  const HttpResponse response = Control(port_, "POST", "/_sim/reset");
  ASSERT_EQ(response.status, 200) << "the receiver reset: " << response.body;
}

WebhookDeliveries WebhookReceiver::Deliveries(const std::string& name) const {
  WebhookDeliveries result;
  const HttpResponse response = Control(port_, "GET", "/_sim/deliveries?endpoint=" + name);
  EXPECT_EQ(response.status, 200) << "the receiver's counts of " << name << ": " << response.error
                                  << response.body;
  if (response.status != 200) return result;
  result.json = response.body;
  const rapidjson::Document counts = ParseJson(response.body);
  if (!counts.IsObject()) return result;
  result.attempts = Int64(counts, "attempts");
  result.accepted = Int64(counts, "accepted");
  result.bad_signatures = Int64(counts, "badSignatures");
  const auto ids = counts.FindMember("ids");
  if (ids != counts.MemberEnd() && ids->value.IsObject()) {
    for (const auto& id : ids->value.GetObject()) {
      WebhookDeliveries::IdCount& count = result.ids[id.name.GetString()];
      count.attempts = Int64(id.value, "attempts");
      count.accepted = Int64(id.value, "accepted");
      count.type = String(id.value, "type");
      count.order_id = String(id.value, "orderId");
      const auto timestamps = id.value.FindMember("timestamps");
      if (timestamps != id.value.MemberEnd() && timestamps->value.IsArray()) {
        for (const auto& ts : timestamps->value.GetArray()) {
          if (ts.IsInt64()) count.timestamps.push_back(ts.GetInt64());
        }
      }
    }
  }
  const auto arrivals = counts.FindMember("arrivals");
  if (arrivals != counts.MemberEnd() && arrivals->value.IsArray()) {
    for (const auto& at : arrivals->value.GetArray()) {
      if (at.IsNumber()) result.arrivals.push_back(at.GetDouble());
    }
  }
  return result;
}

WebhookDeliveries WebhookReceiver::WaitForDeliveries(
    const std::string& name, const std::function<bool(const WebhookDeliveries&)>& done,
    std::chrono::milliseconds timeout) const {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    WebhookDeliveries deliveries = Deliveries(name);
    if (done(deliveries) || std::chrono::steady_clock::now() >= deadline) return deliveries;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

std::string SignWebhook(const std::string& secret, const std::string& id, long timestamp,
                        const std::string& body) {
  const std::string prefix = "whsec_";
  const std::string key = Base64Decode(
      secret.compare(0, prefix.size(), prefix) == 0 ? secret.substr(prefix.size()) : secret);
  const std::string content = id + "." + std::to_string(timestamp) + "." + body;
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(content.data()), content.size(), mac, &size);
  return "v1," + Base64Encode(mac, size);
}

}  // namespace orderflow_test
