#include "simulator.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <thread>

#include "harness.h"

namespace orderflow_test {

ProviderSimulator::~ProviderSimulator() { Stop(); }

void ProviderSimulator::Start() {
  char pattern[] = "/tmp/orderflow-sim-XXXXXX";
  ASSERT_NE(mkdtemp(pattern), nullptr) << "a directory for the simulator";
  dir_ = pattern;
  const std::string port_file = dir_ + "/port";
  const std::string log_file = dir_ + "/log";
  const std::string script = std::string(ORDERFLOW_SOURCE_DIR) + "/tests/sim/stripe_sim.py";
  pid_ = fork();
  ASSERT_GE(pid_, 0) << "fork";
  if (pid_ == 0) {
    const int out = ::open(log_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (out >= 0) {
      dup2(out, 1);
      dup2(out, 2);
    }
    // --exit-with-parent: a test that crashes leaves no simulator behind.
    execlp("python3", "python3", script.c_str(), "--port", "0", "--port-file", port_file.c_str(),
           "--exit-with-parent", static_cast<char*>(nullptr));
    _exit(127);
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
  while (std::chrono::steady_clock::now() < deadline) {
    std::ifstream in(port_file);
    int port = 0;
    if (in >> port && port > 0) {
      port_ = static_cast<uint16_t>(port);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_NE(port_, 0) << "the simulator wrote its port (log in " << log_file << ")";
  HttpRequest health;
  health.path = "/_sim/health";
  ASSERT_EQ(SendHttp(port_, health).status, 200) << "the simulator answers";
}

void ProviderSimulator::Stop() {
  if (pid_ > 0) {
    kill(pid_, SIGTERM);
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
  }
}

std::string ProviderSimulator::BaseUrl() const {
  return "http://127.0.0.1:" + std::to_string(port_);
}

void ProviderSimulator::SetFaults(const std::string& json) {
  HttpRequest request;
  request.method = "POST";
  request.path = "/_sim/faults";
  request.body = json;
  request.headers = {"Content-Type: application/json"};
  const HttpResponse response = SendHttp(port_, request);
  ASSERT_EQ(response.status, 200) << "the simulator took the faults " << json << ": "
                                  << response.body;
}

std::string ProviderSimulator::CountsJson() const {
  HttpRequest request;
  request.path = "/_sim/counts";
  return SendHttp(port_, request).body;
}

ProviderCounts ProviderSimulator::Totals() const {
  rapidjson::Document counts = ParseJson(CountsJson());
  ProviderCounts result;
  if (counts.IsObject() && counts.HasMember("charges"))
    result.charges = counts["charges"].GetInt64();
  if (counts.IsObject() && counts.HasMember("refunds"))
    result.refunds = counts["refunds"].GetInt64();
  return result;
}

ProviderCounts ProviderSimulator::CountsFor(const std::string& order_id) const {
  rapidjson::Document counts = ParseJson(CountsJson());
  ProviderCounts result;
  if (!counts.IsObject() || !counts.HasMember("orders")) return result;
  const auto& orders = counts["orders"];
  const auto order = orders.FindMember(order_id.c_str());
  if (order == orders.MemberEnd()) return result;
  result.charges = order->value["charges"].GetInt64();
  result.refunds = order->value["refunds"].GetInt64();
  return result;
}

long ProviderSimulator::Requests() const {
  rapidjson::Document counts = ParseJson(CountsJson());
  long total = 0;
  if (!counts.IsObject() || !counts.HasMember("requests")) return total;
  for (const auto& kind : counts["requests"].GetObject()) total += kind.value.GetInt64();
  return total;
}

std::vector<double> ProviderSimulator::RequestTimes(const std::string& order_id) const {
  HttpRequest request;
  request.path = "/_sim/requests?order_id=" + order_id;
  rapidjson::Document log = ParseJson(SendHttp(port_, request).body);
  std::vector<double> times;
  if (!log.IsObject() || !log.HasMember("data")) return times;
  for (const auto& entry : log["data"].GetArray()) times.push_back(entry["t_ms"].GetDouble());
  return times;
}

}  // namespace orderflow_test
