// bench_zmq_proxy: the baseline tidepool is compared against. A thin wrapper around libzmq's
// built-in zmq_proxy with default high-water marks, so the benchmark measures exactly what a
// user would get from the stock proxy.
//
// Usage: bench_zmq_proxy router-dealer|pull-push FRONTEND_EP BACKEND_EP [connect|bind]
// The frontend always binds; the backend connects (default, like a sidecar) or binds.

#include <cstdio>
#include <cstring>
#include <exception>
#include <string>
#include <zmq.hpp>

#include <sys/resource.h>

namespace {

int Usage() {
  std::fprintf(stderr,
               "usage: bench_zmq_proxy router-dealer|pull-push FRONTEND_EP BACKEND_EP "
               "[connect|bind]\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4 || argc > 5) return Usage();
  const std::string mode = argv[1];
  const std::string backend_action = argc == 5 ? argv[4] : "connect";
  zmq::socket_type front_type;
  zmq::socket_type back_type;
  if (mode == "router-dealer") {
    front_type = zmq::socket_type::router;
    back_type = zmq::socket_type::dealer;
  } else if (mode == "pull-push") {
    front_type = zmq::socket_type::pull;
    back_type = zmq::socket_type::push;
  } else {
    return Usage();
  }
  if (backend_action != "connect" && backend_action != "bind") return Usage();
  // 1,000 clients are 1,000 connections; a fresh box's soft fd limit is often 1,024.
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max) {
    lim.rlim_cur = lim.rlim_max;
    (void)setrlimit(RLIMIT_NOFILE, &lim);
  }
  try {
    zmq::context_t ctx(1);
    zmq::socket_t front(ctx, front_type);
    zmq::socket_t back(ctx, back_type);
    // Bounded linger so SIGTERM-free shutdown paths never hang; defaults otherwise.
    front.set(zmq::sockopt::linger, 0);
    back.set(zmq::sockopt::linger, 0);
    front.bind(argv[2]);
    if (backend_action == "bind") {
      back.bind(argv[3]);
    } else {
      back.connect(argv[3]);
    }
    std::fprintf(stderr, "bench_zmq_proxy: %s ready\n", mode.c_str());
    zmq::proxy(front, back);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_zmq_proxy: %s\n", e.what());
    return 1;
  }
  return 0;
}
