// bench_client: the message hot loops of the tidepool benchmark (run.sh orchestrates them).
// Each mode is one process; results are printed as a single JSON line on stdout so the
// orchestrator can parse them. Timestamps use steady_clock (CLOCK_MONOTONIC on Linux), which is
// shared by all processes on the machine, so the orchestrator can compare them across processes.
//
// Modes:
//   push   (--connect EP | --bind EP) --count N --size S [--hold-stdin 1]
//   pull   (--bind EP | --connect EP) --count N [--start-timeout-ms T] [--idle-timeout-ms T]
//   req    --connect EP --count N --size S [--warmup W] [--timeout-ms T]
//   worker (--connect EP | --bind EP) [--type rep|dealer]      echo until killed
//   dealer --connect EP --count M --size S [--outstanding K] [--timeout-ms T]
//   clients --connect EP --clients N --size S [--duration-ms D] [--warmup-ms W] [--timeout-ms T]
//          [--ready-timeout-ms R]
//          N DEALER sockets in this one process, each a REQ-style client with one request in
//          flight; requests/s and RTT percentiles over D ms, from when every client has had a
//          reply and W ms have passed (at most R ms: then it measures with the ones it has)
// EP may be a comma-separated list: the socket binds or connects to each (one PULL bound for
// many routes' backends, one PUSH spreading over many routes' frontends).

#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <exception>
#include <map>
#include <string>
#include <vector>
#include <zmq.hpp>

#include <sys/resource.h>

namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point t) {
  return std::chrono::duration<double>(t.time_since_epoch()).count();
}

double Since(Clock::time_point start, Clock::time_point end) {
  return std::chrono::duration<double>(end - start).count();
}

struct Args {
  std::string mode;
  std::map<std::string, std::string> opts;

  bool Has(const std::string& key) const { return opts.count(key) != 0; }
  std::string Str(const std::string& key, const std::string& def = "") const {
    auto it = opts.find(key);
    return it == opts.end() ? def : it->second;
  }
  uint64_t Num(const std::string& key, uint64_t def) const {
    auto it = opts.find(key);
    return it == opts.end() ? def : std::strtoull(it->second.c_str(), nullptr, 10);
  }
};

[[noreturn]] void Die(const char* msg) {
  std::fprintf(stderr, "bench_client: %s\n", msg);
  std::exit(2);
}

Args Parse(int argc, char** argv) {
  if (argc < 2) Die("usage: bench_client push|pull|req|worker|dealer|clients [--key value]...");
  Args args;
  args.mode = argv[1];
  for (int i = 2; i < argc; ++i) {
    std::string key = argv[i];
    if (key.rfind("--", 0) != 0 || i + 1 >= argc) Die("options are --key value pairs");
    args.opts[key.substr(2)] = argv[++i];
  }
  return args;
}

std::vector<std::string> SplitCommas(const std::string& list) {
  std::vector<std::string> parts;
  size_t from = 0;
  while (from <= list.size()) {
    const size_t comma = std::min(list.find(',', from), list.size());
    if (comma > from) parts.emplace_back(list.substr(from, comma - from));
    from = comma + 1;
  }
  return parts;
}

// Binds or connects according to --bind / --connect (each endpoint of a comma-separated list).
void Attach(zmq::socket_t& sock, const Args& args) {
  if (args.Has("bind")) {
    for (const auto& ep : SplitCommas(args.Str("bind"))) sock.bind(ep);
  } else if (args.Has("connect")) {
    for (const auto& ep : SplitCommas(args.Str("connect"))) sock.connect(ep);
  } else {
    Die("need --bind EP or --connect EP");
  }
}

// Many sockets (clients mode) need two fds each; a fresh box's soft limit is often 1,024.
void RaiseFdLimit() {
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max) {
    lim.rlim_cur = lim.rlim_max;
    (void)setrlimit(RLIMIT_NOFILE, &lim);
  }
}

int Push(const Args& args) {
  const uint64_t count = args.Num("count", 100000);
  const size_t size = static_cast<size_t>(args.Num("size", 64));
  // One immutable payload shared by every message: the sender should cost as little as
  // possible so the proxy in the middle is what limits the pipeline.
  std::vector<char> payload(size, 'x');
  zmq::context_t ctx(1);
  zmq::socket_t sock(ctx, zmq::socket_type::push);
  sock.set(zmq::sockopt::linger, -1);  // exit only once everything reached the peer
  Attach(sock, args);
  const auto start = Clock::now();
  for (uint64_t i = 0; i < count; ++i) {
    zmq::message_t msg(payload.data(), payload.size(), nullptr, nullptr);
    sock.send(msg, zmq::send_flags::none);
  }
  const auto sent = Clock::now();
  if (args.Num("hold-stdin", 0) != 0) {
    // Stay connected until the orchestrator closes our stdin (the proxy has read everything):
    // a connection closed while the peer still has unread data in flight can end in a TCP
    // reset, and the kernel discards what it had not delivered yet.
    while (std::fgetc(stdin) != EOF) {
    }
  }
  sock.close();
  ctx.close();
  const auto done = Clock::now();
  std::printf("{\"mode\":\"push\",\"count\":%" PRIu64
              ",\"size\":%zu,\"send_s\":%.6f,\"flush_s\":%.6f}\n",
              count, size, Since(start, sent), Since(sent, done));
  return 0;
}

int Pull(const Args& args) {
  const uint64_t count = args.Num("count", 100000);
  const int start_timeout = static_cast<int>(args.Num("start-timeout-ms", 60000));
  const int idle_timeout = static_cast<int>(args.Num("idle-timeout-ms", 10000));
  zmq::context_t ctx(1);
  zmq::socket_t sock(ctx, zmq::socket_type::pull);
  sock.set(zmq::sockopt::linger, 0);
  sock.set(zmq::sockopt::rcvtimeo, start_timeout);
  Attach(sock, args);
  const auto ready = Clock::now();  // the backend "appears" (backlog drain is timed from here)
  zmq::message_t msg;
  uint64_t received = 0;
  uint64_t bytes = 0;
  Clock::time_point first{};
  Clock::time_point last{};
  while (received < count) {
    if (!sock.recv(msg, zmq::recv_flags::none)) break;  // timed out
    last = Clock::now();
    if (received == 0) {
      first = last;
      sock.set(zmq::sockopt::rcvtimeo, idle_timeout);
    }
    ++received;
    bytes += msg.size();
  }
  // Throughput counts from the first message: the first one pays for connection set-up,
  // which is not what is being measured.
  const double elapsed = received > 1 ? Since(first, last) : 0.0;
  const double rate = elapsed > 0 ? static_cast<double>(received - 1) / elapsed : 0.0;
  const double mbps = elapsed > 0 ? static_cast<double>(bytes) / elapsed / 1e6 : 0.0;
  std::printf("{\"mode\":\"pull\",\"count\":%" PRIu64 ",\"received\":%" PRIu64 ",\"bytes\":%" PRIu64
              ",\"elapsed_s\":%.6f,\"msgs_per_s\":%.1f,\"mb_per_s\":%.3f,"
              "\"t_ready\":%.6f,\"t_first\":%.6f,\"t_last\":%.6f}\n",
              count, received, bytes, elapsed, rate, mbps, Seconds(ready),
              received ? Seconds(first) : 0.0, received ? Seconds(last) : 0.0);
  return received == count ? 0 : 1;
}

double Percentile(const std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0.0;
  const auto idx = static_cast<size_t>(p * static_cast<double>(sorted.size() - 1) + 0.5);
  return sorted[std::min(idx, sorted.size() - 1)];
}

int Req(const Args& args) {
  const uint64_t count = args.Num("count", 10000);
  const uint64_t warmup = args.Num("warmup", 1000);
  const size_t size = static_cast<size_t>(args.Num("size", 64));
  const int timeout = static_cast<int>(args.Num("timeout-ms", 5000));
  std::vector<char> payload(size, 'r');
  zmq::context_t ctx(1);
  zmq::socket_t sock(ctx, zmq::socket_type::req);
  sock.set(zmq::sockopt::linger, 0);
  sock.set(zmq::sockopt::rcvtimeo, timeout);
  Attach(sock, args);
  std::vector<double> rtt_us;
  rtt_us.reserve(count);
  zmq::message_t reply;
  uint64_t failed = 0;
  for (uint64_t i = 0; i < warmup + count; ++i) {
    const auto t0 = Clock::now();
    sock.send(zmq::buffer(payload), zmq::send_flags::none);
    if (!sock.recv(reply, zmq::recv_flags::none)) {
      failed = warmup + count - i;  // a REQ socket cannot continue after a lost reply
      break;
    }
    const auto t1 = Clock::now();
    if (i >= warmup) rtt_us.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
  }
  std::sort(rtt_us.begin(), rtt_us.end());
  double sum = 0;
  for (double v : rtt_us) sum += v;
  std::printf("{\"mode\":\"req\",\"count\":%zu,\"size\":%zu,\"failed\":%" PRIu64
              ",\"p50_us\":%.2f,\"p99_us\":%.2f,\"p999_us\":%.2f,\"mean_us\":%.2f,"
              "\"min_us\":%.2f,\"max_us\":%.2f}\n",
              rtt_us.size(), size, failed, Percentile(rtt_us, 0.5), Percentile(rtt_us, 0.99),
              Percentile(rtt_us, 0.999),
              rtt_us.empty() ? 0.0 : sum / static_cast<double>(rtt_us.size()),
              rtt_us.empty() ? 0.0 : rtt_us.front(), rtt_us.empty() ? 0.0 : rtt_us.back());
  return failed == 0 ? 0 : 1;
}

int Worker(const Args& args) {
  const std::string type = args.Str("type", "rep");
  zmq::context_t ctx(1);
  if (type == "rep") {
    zmq::socket_t sock(ctx, zmq::socket_type::rep);
    sock.set(zmq::sockopt::linger, 0);
    Attach(sock, args);
    zmq::message_t msg;
    while (true) {
      if (!sock.recv(msg, zmq::recv_flags::none)) continue;
      sock.send(msg, zmq::send_flags::none);  // REP restores the envelope itself
    }
  }
  if (type == "dealer") {
    // Echoes every frame, envelope included, which is what a REP would send back.
    zmq::socket_t sock(ctx, zmq::socket_type::dealer);
    sock.set(zmq::sockopt::linger, 0);
    Attach(sock, args);
    zmq::message_t msg;
    while (true) {
      if (!sock.recv(msg, zmq::recv_flags::none)) continue;
      const bool more = msg.more();
      sock.send(msg, more ? zmq::send_flags::sndmore : zmq::send_flags::none);
    }
  }
  Die("worker --type must be rep or dealer");
}

int Dealer(const Args& args) {
  const uint64_t count = args.Num("count", 100000);
  const size_t size = std::max<size_t>(static_cast<size_t>(args.Num("size", 64)), 8);
  const uint64_t outstanding = std::max<uint64_t>(args.Num("outstanding", 1000), 1);
  const auto timeout = std::chrono::milliseconds(args.Num("timeout-ms", 2000));
  std::vector<char> payload(size, 'd');
  zmq::context_t ctx(1);
  zmq::socket_t sock(ctx, zmq::socket_type::dealer);
  sock.set(zmq::sockopt::linger, 0);
  Attach(sock, args);

  // got[id]: 0 = waiting, 1 = replied, 2 = declared lost (no reply within the timeout).
  std::vector<uint8_t> got(count, 0);
  struct Pending {
    uint64_t id;
    Clock::time_point sent;
  };
  std::deque<Pending> pending;  // in send order; replies mostly arrive in that order
  uint64_t sent = 0, received = 0, lost = 0, late = 0, bogus = 0, in_flight = 0;
  const auto start = Clock::now();
  auto last_reply = start;
  zmq::message_t delim;
  zmq::message_t body;

  while (true) {
    const auto now = Clock::now();
    // A reply that has not come back within the timeout is lost; it frees its window slot so
    // the client keeps `outstanding` requests in flight, as a real client with retries would.
    while (!pending.empty()) {
      Pending& head = pending.front();
      if (got[head.id] == 0) {
        if (now - head.sent < timeout) break;
        got[head.id] = 2;
        ++lost;
        --in_flight;
      }
      pending.pop_front();
    }
    if (sent == count && pending.empty()) break;

    const bool can_send = sent < count && in_flight < outstanding;
    zmq::pollitem_t item{sock.handle(), 0,
                         static_cast<short>(ZMQ_POLLIN | (can_send ? ZMQ_POLLOUT : 0)), 0};
    long wait_ms = 100;
    if (!pending.empty()) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(pending.front().sent +
                                                                              timeout - now);
      wait_ms = std::clamp<long>(static_cast<long>(left.count()) + 1, 0, 100);
    }
    zmq::poll(&item, 1, std::chrono::milliseconds(wait_ms));

    if (item.revents & ZMQ_POLLIN) {
      while (true) {
        if (!sock.recv(delim, zmq::recv_flags::dontwait)) break;
        if (!delim.more()) {
          ++bogus;
          continue;
        }
        if (!sock.recv(body, zmq::recv_flags::none)) break;
        while (body.more()) {
          (void)sock.recv(body, zmq::recv_flags::none);
          ++bogus;
        }
        uint64_t id = UINT64_MAX;
        if (body.size() >= sizeof id) std::memcpy(&id, body.data(), sizeof id);
        if (id >= count) {
          ++bogus;
        } else if (got[id] == 0) {
          got[id] = 1;
          ++received;
          --in_flight;
          last_reply = Clock::now();
        } else if (got[id] == 2) {
          ++late;
        } else {
          ++bogus;  // duplicate
        }
      }
    }
    if (can_send && (item.revents & ZMQ_POLLOUT)) {
      const auto t = Clock::now();
      while (sent < count && in_flight < outstanding) {
        std::memcpy(payload.data(), &sent, sizeof sent);
        if (!sock.send(zmq::message_t(), zmq::send_flags::sndmore | zmq::send_flags::dontwait)) {
          break;
        }
        // The delimiter is queued, so the body frame is accepted too (atomic multipart).
        sock.send(zmq::buffer(payload), zmq::send_flags::none);
        pending.push_back({sent, t});
        ++sent;
        ++in_flight;
      }
    }
  }
  const double elapsed = Since(start, last_reply);
  std::printf("{\"mode\":\"dealer\",\"count\":%" PRIu64 ",\"size\":%zu,\"outstanding\":%" PRIu64
              ",\"sent\":%" PRIu64 ",\"received\":%" PRIu64 ",\"lost\":%" PRIu64
              ",\"late\":%" PRIu64 ",\"bogus\":%" PRIu64
              ",\"elapsed_s\":%.6f,\"req_per_s\":%.1f}\n",
              count, size, outstanding, sent, received, lost, late, bogus, elapsed,
              elapsed > 0 ? static_cast<double>(received) / elapsed : 0.0);
  return 0;
}

// N clients in one process, so that 1,000 of them cost one process, not 1,000. Each is a DEALER
// speaking the REQ envelope with one request in flight (what a REQ client does), so a lost
// reply costs that client only its timeout, and the proxy sees N connections.
int Clients(const Args& args) {
  const size_t n = std::max<size_t>(static_cast<size_t>(args.Num("clients", 100)), 1);
  const size_t size = std::max<size_t>(static_cast<size_t>(args.Num("size", 64)), 16);
  const auto warmup = std::chrono::milliseconds(args.Num("warmup-ms", 500));
  const auto duration = std::chrono::milliseconds(args.Num("duration-ms", 2000));
  const auto timeout = std::chrono::milliseconds(args.Num("timeout-ms", 2000));
  const auto ready_timeout = std::chrono::milliseconds(args.Num("ready-timeout-ms", 30000));
  RaiseFdLimit();
  zmq::context_t ctx(1);
  ctx.set(zmq::ctxopt::max_sockets, static_cast<int>(n + 16));
  struct Client {
    zmq::socket_t sock;
    uint64_t seq = 0;
    Clock::time_point sent;
  };
  std::vector<Client> clients;
  clients.reserve(n);
  std::vector<zmq::pollitem_t> items(n);
  for (size_t i = 0; i < n; ++i) {
    clients.push_back({zmq::socket_t(ctx, zmq::socket_type::dealer), 0, {}});
    clients[i].sock.set(zmq::sockopt::linger, 0);
    Attach(clients[i].sock, args);
    items[i] = {clients[i].sock.handle(), 0, ZMQ_POLLIN, 0};
  }
  std::vector<char> payload(size, 'c');
  // Body: client index, then its sequence number, so a late reply is told from the current one.
  auto send = [&](size_t i, Clock::time_point now) {
    Client& c = clients[i];
    ++c.seq;
    const uint64_t index = i;
    std::memcpy(payload.data(), &index, sizeof index);
    std::memcpy(payload.data() + 8, &c.seq, sizeof c.seq);
    c.sent = now;
    c.sock.send(zmq::message_t(), zmq::send_flags::sndmore);
    c.sock.send(zmq::buffer(payload), zmq::send_flags::none);
  };
  // The window opens only once every client has had a reply: 1,000 connects at once overflow
  // the proxy's listen backlog (100), and the kernel retries a dropped SYN after 1 s, then 3 s.
  const auto start = Clock::now();
  auto measure_from = Clock::time_point::max();
  auto end = Clock::time_point::max();
  std::vector<uint8_t> replied(n, 0);
  size_t ready = 0;
  for (size_t i = 0; i < n; ++i) send(i, start);
  std::vector<double> rtt_us;
  uint64_t answered = 0, lost = 0, late = 0, bogus = 0;
  zmq::message_t delim;
  zmq::message_t body;
  auto last_timeout_scan = start;
  while (true) {
    auto now = Clock::now();
    if (now >= end) break;
    zmq::poll(items.data(), items.size(), std::chrono::milliseconds(10));
    for (size_t i = 0; i < n; ++i) {
      if (!(items[i].revents & ZMQ_POLLIN)) continue;
      Client& c = clients[i];
      while (c.sock.recv(delim, zmq::recv_flags::dontwait)) {
        if (!delim.more() || !c.sock.recv(body, zmq::recv_flags::none)) {
          ++bogus;
          continue;
        }
        while (body.more()) {
          (void)c.sock.recv(body, zmq::recv_flags::none);
          ++bogus;
        }
        uint64_t index = UINT64_MAX, seq = 0;
        if (body.size() >= 16) {
          std::memcpy(&index, body.data(), sizeof index);
          std::memcpy(&seq, static_cast<const char*>(body.data()) + 8, sizeof seq);
        }
        if (index != i) {
          ++bogus;  // a reply delivered to the wrong client
          continue;
        }
        if (seq != c.seq) {
          ++late;
          continue;
        }
        now = Clock::now();
        if (!replied[i]) {
          replied[i] = 1;
          ++ready;
        }
        if (c.sent >= measure_from && now <= end) {
          ++answered;
          rtt_us.push_back(std::chrono::duration<double, std::micro>(now - c.sent).count());
        }
        send(i, now);
      }
    }
    now = Clock::now();
    if (measure_from == Clock::time_point::max() &&
        ((ready == n && now - start >= warmup) || now - start >= ready_timeout)) {
      measure_from = now;
      end = now + duration;
    }
    if (now - last_timeout_scan >= std::chrono::milliseconds(10)) {
      last_timeout_scan = now;
      for (size_t i = 0; i < n; ++i) {
        if (now - clients[i].sent < timeout) continue;
        if (clients[i].sent >= measure_from) ++lost;
        send(i, now);  // gives up on that reply, as a REQ client with a retry would
      }
    }
  }
  std::sort(rtt_us.begin(), rtt_us.end());
  const double window = std::chrono::duration<double>(duration).count();
  // The client's own CPU over the whole run: near 100% of a core means the figures show this
  // one process's limit more than the proxy's.
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  const double cpu_s = static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
                       static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
  const double run_s = Since(start, Clock::now());
  const double ready_s = Since(start, measure_from);
  std::printf("{\"mode\":\"clients\",\"clients\":%zu,\"size\":%zu,\"answered\":%" PRIu64
              ",\"lost\":%" PRIu64 ",\"late\":%" PRIu64 ",\"bogus\":%" PRIu64
              ",\"window_s\":%.6f,\"req_per_s\":%.1f,\"p50_us\":%.2f,\"p99_us\":%.2f,"
              "\"client_cpu_pct\":%.1f,\"ready\":%zu,\"ready_s\":%.3f}\n",
              n, size, answered, lost, late, bogus, window, static_cast<double>(answered) / window,
              Percentile(rtt_us, 0.5), Percentile(rtt_us, 0.99),
              run_s > 0 ? cpu_s / run_s * 100 : 0.0, ready, ready_s);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const Args args = Parse(argc, argv);
  try {
    if (args.mode == "push") return Push(args);
    if (args.mode == "pull") return Pull(args);
    if (args.mode == "req") return Req(args);
    if (args.mode == "worker") return Worker(args);
    if (args.mode == "dealer") return Dealer(args);
    if (args.mode == "clients") return Clients(args);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_client %s: %s\n", args.mode.c_str(), e.what());
    return 1;
  }
  Die("unknown mode (push|pull|req|worker|dealer|clients)");
}
