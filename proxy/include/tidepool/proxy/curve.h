// CURVE security: key files in, keys on sockets, and the ZAP handler (ZeroMQ RFC 27) that
// decides which clients may complete a handshake.
#pragma once

#include <chrono>
#include <map>
#include <string>
#include <unordered_set>
#include <vector>

#include <zmq.hpp>

#include "tidepool/proxy/config.h"
#include "tidepool/proxy/log.h"

namespace tidepool::proxy {

// Reads every key file `config` names into its CurveConfig::keys. Throws ConfigError naming
// the key (`routes[0].frontend.curve.secret_key_file`) and the problem. A secret key file
// that group or others may read is allowed (container secrets are often 0444) but warned
// about.
void load_curve_keys(Config& config);

// The public keys (Z85) at `location`: every *.key certificate in a directory (the CZMQ and
// pyzmq layout), or a file holding one certificate or a list of keys. Throws ConfigError
// with `config_path` as its path.
std::vector<std::string> load_authorized_keys(const std::string& location,
                                              const std::string& config_path);

// A new key pair in BASE.key (public certificate) and BASE.key_secret (secret, mode 0600).
// Refuses to overwrite either file. Returns the public key. Throws std::runtime_error.
std::string write_key_pair(const std::string& base);

// Applies `config`'s CURVE role and keys (if any) to `socket`, and the ZAP domain that says
// which policy the handler applies to it.
void apply_security(zmq::socket_t& socket, const SocketConfig& config, const std::string& route,
                    bool backend);

// True when some socket in `config` uses CURVE: only then is a ZAP handler needed.
bool uses_curve(const Config& config);

// Answers libzmq's ZAP requests for every socket of the process's context. Bound at
// inproc://zeromq.zap.01 before any socket binds; polled by the event loop, like any socket.
// NULL-security sockets are let through (their peers proved nothing); CURVE frontends let in
// a client whose key is on the route's list, or any client when there is no list.
class ZapHandler {
 public:
  ZapHandler(zmq::context_t& context, const Config& config);
  ZapHandler(const ZapHandler&) = delete;
  ZapHandler& operator=(const ZapHandler&) = delete;

  [[nodiscard]] zmq::pollitem_t poll_item() { return {socket_.handle(), 0, ZMQ_POLLIN, 0}; }
  // Answers every request waiting.
  void handle(std::chrono::steady_clock::time_point now);
  // Writes the rate-limited refusal summaries that are due.
  void tick(std::chrono::steady_clock::time_point now);
  // Reads every authorized_keys location again (SIGHUP). A list that fails to load keeps
  // its previous contents and the failure is logged. False when any list failed.
  [[nodiscard]] bool reload();

 private:
  struct Policy {
    std::string route;
    std::string location;                  // authorized_keys; empty: any client
    std::string config_path;               // for errors
    std::unordered_set<std::string> keys;  // 32-byte binary public keys
    log::RateLimited refusals;
  };
  // Answers one request; false when none was waiting.
  bool answer(std::chrono::steady_clock::time_point now);

  zmq::socket_t socket_;
  std::map<std::string, Policy, std::less<>> policies_;  // by ZAP domain
  log::RateLimited unexpected_;                          // requests no policy covers
};

}  // namespace tidepool::proxy
