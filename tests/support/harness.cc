// The integration-test harness (see harness.h): free ports, sockets, processes (the tidepool
// binary, peers, commands) with their logs, and HTTP GETs of its endpoints.
#include "harness.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "tidepool/proxy/http_client.h"

namespace tidepool::test {
namespace {

// Whether the running test case has failed an assertion: a Tidepool that ends in a failed test
// prints its log, since a failure seen once in a full run is often not seen again.
std::atomic<bool> test_case_failed{false};  // doctest allows asserts from other threads

struct FailureListener : doctest::IReporter {
  explicit FailureListener(const doctest::ContextOptions& /*options*/) {}
  void report_query(const doctest::QueryData& /*data*/) override {}
  void test_run_start() override {}
  void test_run_end(const doctest::TestRunStats& /*stats*/) override {}
  void test_case_start(const doctest::TestCaseData& /*data*/) override { test_case_failed = false; }
  void test_case_reenter(const doctest::TestCaseData& /*data*/) override {}
  void test_case_end(const doctest::CurrentTestCaseStats& /*stats*/) override {}
  void test_case_exception(const doctest::TestCaseException& /*exception*/) override {}
  void subcase_start(const doctest::SubcaseSignature& /*signature*/) override {}
  void subcase_end() override {}
  void log_assert(const doctest::AssertData& data) override {
    if (data.m_failed) test_case_failed = true;
  }
  void log_message(const doctest::MessageData& /*data*/) override {}
  void test_case_skipped(const doctest::TestCaseData& /*data*/) override {}
};
REGISTER_LISTENER("tidepool_failures", 1, FailureListener);

// The last `lines` lines of `text`.
std::string tail(const std::string& text, std::size_t lines) {
  if (lines == 0) return {};
  std::size_t at = text.size();
  if (at > 0 && text[at - 1] == '\n') --at;
  for (std::size_t n = 0; n < lines; ++n) {
    const std::size_t newline = at == 0 ? std::string::npos : text.rfind('\n', at - 1);
    if (newline == std::string::npos) return text;
    at = newline;
  }
  return text.substr(at + 1);
}

std::string make_temp_directory() {
  std::string pattern = (std::filesystem::temp_directory_path() / "tidepool-test-XXXXXX").string();
  if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  return pattern;
}

std::string read_file(const std::string& path) {
  std::ifstream file(path);
  std::stringstream text;
  text << file.rdbuf();
  return text.str();
}

// fork + exec with stdout/stderr sent to `output_path`; `env` entries are added.
pid_t spawn(const std::vector<std::string>& argv, const std::string& output_path,
            const std::map<std::string, std::string>& env) {
  const pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    const int out = ::open(output_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(out, 1);
    ::dup2(out, 2);
    const int devnull = ::open("/dev/null", O_RDONLY);
    ::dup2(devnull, 0);
    for (const auto& [key, value] : env) ::setenv(key.c_str(), value.c_str(), 1);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  return pid;
}

std::optional<int> wait_pid(pid_t pid, std::chrono::milliseconds timeout) {
  std::optional<int> code;
  wait_until(
      [&] {
        int status = 0;
        if (::waitpid(pid, &status, WNOHANG) == pid) {
          code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
          return true;
        }
        return false;
      },
      timeout);
  return code;
}

}  // namespace

bool can_bind(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = htons(static_cast<std::uint16_t>(port));
  const bool bound = ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0;
  ::close(fd);
  return bound;
}

// Ports come from below the kernel's ephemeral range (net.ipv4.ip_local_port_range, 32768 up
// on Debian), where no bind to port 0 and no outgoing connection can take them, and each is
// reserved for this process's life by a lock on a file of its number: a port that a test
// leaves unbound for a while (a worker restarted on it) cannot go to a test running beside it.
// With the kernel's own ports, one did once (`Address already in use` for 5 s).
int free_port() {
  constexpr int kLow = 20000;
  constexpr int kHigh = 32768;  // Debian's ip_local_port_range starts here
  static const std::filesystem::path locks =
      std::filesystem::temp_directory_path() / "tidepool-test-ports";
  std::filesystem::create_directories(locks);
  static unsigned seed = static_cast<unsigned>(::getpid()) * 2654435761U;
  for (int attempt = 0; attempt < 1000; ++attempt) {
    seed = seed * 1103515245U + 12345U;
    const int port = kLow + static_cast<int>((seed >> 8) % (kHigh - kLow));
    const std::string lock = (locks / std::to_string(port)).string();
    const int lock_fd = ::open(lock.c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0666);
    if (lock_fd < 0) continue;
    if (::flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {  // another test process holds it
      ::close(lock_fd);
      continue;
    }
    if (!can_bind(port)) {  // in use by something that does not take part in the locks
      ::close(lock_fd);
      continue;
    }
    return port;  // lock_fd stays open: the reservation ends with the process
  }
  throw std::runtime_error("cannot find a free port in 20000-32767");
}

std::string endpoint(int port) { return "tcp://127.0.0.1:" + std::to_string(port); }

zmq::socket_t connect_socket(zmq::context_t& context, zmq::socket_type type, int port) {
  zmq::socket_t socket(context, type);
  socket.connect(endpoint(port));
  return socket;
}

void bind_port(zmq::socket_t& socket, int port) {
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (true) {
    try {
      socket.bind(endpoint(port));
      return;
    } catch (const zmq::error_t& e) {
      if (e.num() != EADDRINUSE || std::chrono::steady_clock::now() >= deadline) throw;
      std::this_thread::sleep_for(10ms);
    }
  }
}

zmq::socket_t bind_socket(zmq::context_t& context, zmq::socket_type type, int port) {
  zmq::socket_t socket(context, type);
  socket.set(zmq::sockopt::rcvtimeo, 10000);
  bind_port(socket, port);
  return socket;
}

void send_request(zmq::socket_t& dealer, const std::string& body) {
  dealer.send(zmq::message_t(), zmq::send_flags::sndmore);
  dealer.send(zmq::buffer(body));
}

bool wait_until(const std::function<bool()>& condition, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    if (condition()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(5ms);
  }
}

CommandResult run_command(const std::vector<std::string>& argv, std::chrono::milliseconds timeout,
                          const std::map<std::string, std::string>& env) {
  const std::string directory = make_temp_directory();
  const std::string output = directory + "/output";
  const pid_t pid = spawn(argv, output, env);
  CommandResult result;
  if (auto code = wait_pid(pid, timeout)) {
    result.exit_code = *code;
  } else {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
  }
  result.output = read_file(output);
  std::filesystem::remove_all(directory);
  return result;
}

nlohmann::json with_routes(const std::vector<nlohmann::json>& routes) {
  nlohmann::json config;
  config["routes"] = routes;
  return config;
}

nlohmann::json pipeline_route(const std::string& name, int front, int back) {
  return {{"name", name},
          {"frontend", {{"type", "pull"}, {"bind", {endpoint(front)}}}},
          {"backend", {{"type", "push"}, {"connect", {endpoint(back)}}}}};
}

nlohmann::json request_reply_route(const std::string& name, int front,
                                   const std::vector<int>& backs) {
  std::vector<std::string> connects;
  for (int port : backs) connects.push_back(endpoint(port));
  return {{"name", name},
          {"frontend", {{"type", "router"}, {"bind", {endpoint(front)}}}},
          {"backend", {{"type", "dealer"}, {"connect", connects}}}};
}

Tidepool::Tidepool(nlohmann::json config, std::vector<std::string> extra_args,
                   const std::map<std::string, std::string>& env)
    : directory_(make_temp_directory()) {
  if (!config.contains("http")) {
    http_port_ = free_port();
    config["http"] = {{"listen", "127.0.0.1:" + std::to_string(http_port_)}};
  } else {
    const std::string listen = config["http"]["listen"];
    http_port_ = std::stoi(listen.substr(listen.rfind(':') + 1));
  }
  const std::string config_path = directory_ + "/tidepool.json";
  std::ofstream(config_path) << config.dump(2);
  std::vector<std::string> argv = {TIDEPOOL_BINARY, "--config", config_path};
  argv.insert(argv.end(), extra_args.begin(), extra_args.end());
  pid_ = spawn(argv, directory_ + "/stderr.log", env);
}

Tidepool::~Tidepool() {
  if (!exit_code_) {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
  // Once it is gone, so the log is whole. An exception unwinding through this scope (a
  // REQUIRE) counts as a failure too.
  if (test_case_failed || std::uncaught_exceptions() > uncaught_at_start_) {
    std::string lines = tail(log(), 300);
    if (!lines.empty() && lines.back() != '\n') lines += '\n';
    std::cerr << "---- the test failed: the last 300 lines of tidepool's log (pid " << pid_
              << ") ----\n"
              << lines << "---- end of tidepool's log ----\n";
  }
  std::filesystem::remove_all(directory_);
}

std::pair<int, std::string> Tidepool::http(const std::string& path) const {
  std::string error;
  const auto reply = proxy::http_get("127.0.0.1:" + std::to_string(http_port_), path, 2s, error);
  if (!reply) return {0, error};
  return {reply->status, reply->body};
}

std::optional<double> Tidepool::metric(const std::string& name,
                                       const std::map<std::string, std::string>& labels) const {
  const auto [status, body] = http("/metrics");
  if (status != 200) return std::nullopt;
  // prometheus-cpp writes labels sorted by name, as std::map iterates them.
  std::string series = name;
  if (!labels.empty()) {
    series += "{";
    bool first = true;
    for (const auto& [key, value] : labels) {
      series += (first ? "" : ",") + key + "=\"" + value + "\"";
      first = false;
    }
    series += "}";
  }
  std::istringstream lines(body);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.size() > series.size() && line.compare(0, series.size(), series) == 0 &&
        line[series.size()] == ' ') {
      return std::stod(line.substr(series.size() + 1));
    }
  }
  return std::nullopt;
}

std::optional<double> Tidepool::metric_sum(const std::string& name,
                                           const std::map<std::string, std::string>& labels) const {
  const auto [status, body] = http("/metrics");
  if (status != 200) return std::nullopt;
  double sum = 0;
  std::istringstream lines(body);
  std::string line;
  while (std::getline(lines, line)) {
    if (!line.starts_with(name + "{") && !line.starts_with(name + " ")) continue;
    const auto value_at = line.rfind(' ');
    const std::string label_text = line.substr(0, value_at);
    // prometheus-cpp quotes label values and escapes no characters our labels use.
    const bool all = std::all_of(labels.begin(), labels.end(), [&](const auto& label) {
      const std::string pair = label.first + "=\"" + label.second + "\"";
      return label_text.find("{" + pair) != std::string::npos ||
             label_text.find("," + pair) != std::string::npos;
    });
    if (all) sum += std::stod(line.substr(value_at + 1));
  }
  return sum;
}

bool Tidepool::wait_metric(const std::string& name,
                           const std::map<std::string, std::string>& labels, double value,
                           std::chrono::milliseconds timeout) const {
  return wait_until([&] { return metric(name, labels) == value; }, timeout);
}

bool Tidepool::wait_ready(std::chrono::milliseconds timeout) const {
  return wait_until([&] { return http("/readyz").first == 200; }, timeout);
}

void Tidepool::signal(int number) const { ::kill(pid_, number); }

std::optional<int> Tidepool::wait_exit(std::chrono::milliseconds timeout) {
  if (!exit_code_) exit_code_ = wait_pid(pid_, timeout);
  return exit_code_;
}

std::string Tidepool::log() const { return read_file(directory_ + "/stderr.log"); }

Peer::Peer(const std::vector<std::string>& argv) : directory_(make_temp_directory()) {
  pid_ = spawn(argv, directory_ + "/output.log", {});
}

Peer::~Peer() {
  ::kill(pid_, SIGCONT);  // a stopped peer cannot die of SIGKILL until continued on some kernels
  ::kill(pid_, SIGKILL);
  ::waitpid(pid_, nullptr, 0);
  std::filesystem::remove_all(directory_);
}

void Peer::signal(int number) const { ::kill(pid_, number); }

bool Peer::wait_output(const std::string& text, std::chrono::milliseconds timeout) const {
  return wait_until([&] { return output().find(text) != std::string::npos; }, timeout);
}

std::string Peer::output() const { return read_file(directory_ + "/output.log"); }

std::unique_ptr<Peer> start_echo_worker(int port, const std::string& name, int delay_ms) {
  auto peer = std::make_unique<Peer>(std::vector<std::string>{
      "/usr/bin/python3", std::string(TIDEPOOL_SOURCE_DIR) + "/tests/support/echo_worker.py",
      std::to_string(port), name, std::to_string(delay_ms)});
  if (!peer->wait_output("ready")) {
    throw std::runtime_error("echo worker did not start: " + peer->output());
  }
  return peer;
}

}  // namespace tidepool::test
