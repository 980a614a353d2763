// CURVE security (see curve.h): reading and checking key files, keygen, keys on sockets, and
// the ZAP handler's answers and reloads.
#include "tidepool/proxy/curve.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <variant>

#include "tidepool/protocol/curve_key.h"

namespace tidepool::proxy {
namespace {

namespace fs = std::filesystem;
using protocol::CurveCertificate;

// ZeroMQ RFC 27 fixes the handler's address and version.
constexpr const char* kZapEndpoint = "inproc://zeromq.zap.01";
constexpr std::string_view kZapVersion = "1.0";
// Sockets without CURVE announce this domain; naming any domain also makes libzmq refuse
// unversioned ZMTP 1.0 peers (see route.cc).
constexpr const char* kNullDomain = "tidepool";

std::string read_text(const std::string& file, const std::string& config_path) {
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    throw ConfigError(config_path, "cannot read \"" + file + "\": " + std::strerror(errno));
  }
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

CurveCertificate read_certificate(const std::string& file, const std::string& config_path) {
  auto parsed = protocol::parse_curve_certificate(read_text(file, config_path));
  if (auto* error = std::get_if<std::string>(&parsed)) {
    throw ConfigError(config_path, "\"" + file + "\": " + *error);
  }
  return std::get<CurveCertificate>(parsed);
}

// The secret certificate must hold both keys, and they must belong together: a public key
// pasted from another pair would make every handshake fail with no hint why.
void read_key_pair(const std::string& file, const std::string& config_path,
                   CurveConfig::Keys& keys) {
  const auto certificate = read_certificate(file, config_path);
  if (!certificate.secret_key) {
    throw ConfigError(config_path, "\"" + file +
                                       "\" has no secret-key: it is a public certificate (use "
                                       "the .key_secret file)");
  }
  char derived[protocol::kCurveKeyZ85Length + 1] = {};
  if (zmq_curve_public(derived, certificate.secret_key->c_str()) != 0) {
    throw ConfigError(config_path, "\"" + file + "\": libzmq cannot use its secret-key (" +
                                       zmq_strerror(zmq_errno()) + ")");
  }
  if (certificate.public_key != derived) {
    throw ConfigError(config_path,
                      "\"" + file + "\": its public-key does not belong to its secret-key");
  }
  struct stat info {};
  if (::stat(file.c_str(), &info) == 0 && (info.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", info.st_mode & 07777);
    log::warn("secret key file is readable by group or others; chmod 600 it",
              {{"file", file}, {"mode", mode}});
  }
  keys.public_key = certificate.public_key;
  keys.secret_key = *certificate.secret_key;
}

std::string zap_domain_for(const std::string& route) {
  return std::string(kNullDomain) + "/" + route;
}

std::string local_timestamp() {
  const std::time_t now = std::time(nullptr);
  std::tm local{};
  localtime_r(&now, &local);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%d %H:%M:%S", &local);
  return text;
}

// Creates `path` with `mode` and writes `text`; never replaces an existing file.
void write_new_file(const std::string& path, const std::string& text, mode_t mode) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0) {
    throw std::runtime_error(
        "cannot create \"" + path + "\": " + std::strerror(errno) +
        (errno == EEXIST ? " (remove it first: keygen never overwrites keys)" : ""));
  }
  std::size_t written = 0;
  while (written < text.size()) {
    const auto n = ::write(fd, text.data() + written, text.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const std::string error = std::strerror(errno);
      ::close(fd);
      ::unlink(path.c_str());
      throw std::runtime_error("cannot write \"" + path + "\": " + error);
    }
    written += static_cast<std::size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    throw std::runtime_error("cannot write \"" + path + "\": " + std::strerror(errno));
  }
}

std::string z85_of(const zmq::message_t& key) {
  return protocol::z85_encode(static_cast<const std::uint8_t*>(key.data()), key.size());
}

}  // namespace

std::vector<std::string> load_authorized_keys(const std::string& location,
                                              const std::string& config_path) {
  std::error_code error;
  if (fs::is_directory(location, error)) {
    std::vector<std::string> keys;
    // error_code forms throughout: a directory that changes under us (SIGHUP) or an
    // unreadable entry is a ConfigError, never an escaped filesystem_error.
    for (fs::directory_iterator it(location, error), end; !error && it != end;
         it.increment(error)) {
      std::error_code type_error;
      if (it->path().extension() != ".key" || !it->is_regular_file(type_error)) continue;
      keys.push_back(read_certificate(it->path().string(), config_path).public_key);
    }
    if (error) {
      throw ConfigError(config_path, "cannot list \"" + location + "\": " + error.message());
    }
    return keys;
  }
  const std::string text = read_text(location, config_path);
  // One certificate (a .key file), or a plain list of keys.
  if (text.find("public-key") != std::string::npos) {
    return {read_certificate(location, config_path).public_key};
  }
  auto parsed = protocol::parse_curve_key_list(text);
  if (auto* problem = std::get_if<std::string>(&parsed)) {
    throw ConfigError(config_path, "\"" + location + "\": " + *problem +
                                       " (expected a certificate, or one Z85 key per line)");
  }
  return std::get<std::vector<std::string>>(parsed);
}

void load_curve_keys(Config& config) {
  if (uses_curve(config) && !zmq_has("curve")) {
    throw ConfigError("routes", "CURVE is configured but this libzmq was built without it");
  }
  for (std::size_t i = 0; i < config.routes.size(); ++i) {
    auto& route = config.routes[i];
    for (auto [side, socket] :
         {std::pair{"frontend", &route.frontend}, std::pair{"backend", &route.backend}}) {
      if (!socket->curve) continue;
      CurveConfig& curve = *socket->curve;
      const std::string path = "routes[" + std::to_string(i) + "]." + side + ".curve.";
      read_key_pair(curve.secret_key_file, path + "secret_key_file", curve.keys);
      if (!curve.server_public_key_file.empty()) {
        curve.keys.server_public_key =
            read_certificate(curve.server_public_key_file, path + "server_public_key_file")
                .public_key;
      }
      if (!curve.authorized_keys.empty()) {
        curve.keys.authorized =
            load_authorized_keys(curve.authorized_keys, path + "authorized_keys");
        if (curve.keys.authorized.empty()) {
          log::warn("authorized_keys holds no key: every client will be refused",
                    {{"route", route.name}, {"authorized_keys", curve.authorized_keys}});
        }
      }
    }
  }
}

std::string write_key_pair(const std::string& base) {
  char public_key[protocol::kCurveKeyZ85Length + 1] = {};
  char secret_key[protocol::kCurveKeyZ85Length + 1] = {};
  if (zmq_curve_keypair(public_key, secret_key) != 0) {
    throw std::runtime_error(std::string("cannot make a CURVE key pair: ") +
                             zmq_strerror(zmq_errno()) +
                             (zmq_errno() == ENOTSUP ? " (libzmq built without CURVE)" : ""));
  }
  const std::string generated = local_timestamp();
  write_new_file(base + ".key_secret",
                 protocol::format_secret_certificate(public_key, secret_key, generated), 0600);
  try {
    write_new_file(base + ".key", protocol::format_public_certificate(public_key, generated), 0644);
  } catch (...) {
    ::unlink((base + ".key_secret").c_str());  // no half pair left behind
    throw;
  }
  return public_key;
}

bool uses_curve(const Config& config) {
  for (const auto& route : config.routes) {
    if (route.frontend.curve || route.backend.curve) return true;
  }
  return false;
}

void apply_security(zmq::socket_t& socket, const SocketConfig& config, const std::string& route,
                    bool backend) {
  if (!config.curve) {
    socket.set(zmq::sockopt::zap_domain, kNullDomain);
    return;
  }
  const auto& keys = config.curve->keys;
  if (backend) {
    socket.set(zmq::sockopt::curve_serverkey, keys.server_public_key);
    socket.set(zmq::sockopt::curve_publickey, keys.public_key);
    socket.set(zmq::sockopt::curve_secretkey, keys.secret_key);
    socket.set(zmq::sockopt::zap_domain, kNullDomain);  // clients are not asked about
  } else {
    socket.set(zmq::sockopt::curve_server, true);
    socket.set(zmq::sockopt::curve_secretkey, keys.secret_key);
    socket.set(zmq::sockopt::zap_domain, zap_domain_for(route));
  }
}

ZapHandler::ZapHandler(zmq::context_t& context, const Config& config)
    : socket_(context, zmq::socket_type::rep) {
  socket_.set(zmq::sockopt::linger, 0);
  socket_.bind(kZapEndpoint);
  for (std::size_t i = 0; i < config.routes.size(); ++i) {
    const auto& route = config.routes[i];
    if (!route.frontend.curve) continue;
    Policy& policy = policies_[zap_domain_for(route.name)];
    policy.route = route.name;
    policy.location = route.frontend.curve->authorized_keys;
    policy.config_path = "routes[" + std::to_string(i) + "].frontend.curve.authorized_keys";
    for (const auto& key : route.frontend.curve->keys.authorized) {
      const auto bytes = protocol::z85_decode(key);  // validated when loaded
      policy.keys.emplace(bytes->begin(), bytes->end());
    }
  }
}

void ZapHandler::handle(std::chrono::steady_clock::time_point now) {
  while (answer(now)) {
  }
}

void ZapHandler::tick(std::chrono::steady_clock::time_point now) {
  for (auto& [domain, policy] : policies_) policy.refusals.tick(now);
  unexpected_.tick(now);
}

bool ZapHandler::reload() {
  bool all_loaded = true;
  for (auto& [domain, policy] : policies_) {
    if (policy.location.empty()) continue;
    try {
      std::unordered_set<std::string> keys;
      for (const auto& key : load_authorized_keys(policy.location, policy.config_path)) {
        const auto bytes = protocol::z85_decode(key);
        keys.emplace(bytes->begin(), bytes->end());
      }
      policy.keys = std::move(keys);
      log::info("authorized keys reloaded", {{"route", policy.route},
                                             {"authorized_keys", policy.location},
                                             {"keys", std::to_string(policy.keys.size())}});
    } catch (const ConfigError& e) {
      log::error("authorized keys not reloaded: keeping the previous list",
                 {{"route", policy.route}, {"error", e.what()}});
      all_loaded = false;
    }
  }
  return all_loaded;
}

bool ZapHandler::answer(std::chrono::steady_clock::time_point now) {
  std::vector<zmq::message_t> request;
  zmq::message_t frame;
  if (!socket_.recv(frame, zmq::recv_flags::dontwait)) return false;
  request.push_back(std::move(frame));
  while (request.back().more()) {
    request.emplace_back();
    (void)socket_.recv(request.back(), zmq::recv_flags::none);
  }
  // RFC 27: version, request id, domain, address, identity, mechanism, credentials...
  std::string_view status = "400";
  std::string_view text = "refused";
  std::string user;
  if (request.size() < 6 || request[0].to_string_view() != kZapVersion) {
    status = "500";
    text = "malformed ZAP request";
  } else {
    const auto domain = request[2].to_string_view();
    const auto address = request[3].to_string();
    const auto mechanism = request[5].to_string_view();
    if (mechanism == "NULL" && domain == kNullDomain) {
      status = "200";  // a NULL socket: nothing to check
      text = "OK";
    } else if (auto it = policies_.find(domain); it != policies_.end() && mechanism == "CURVE" &&
                                                 request.size() >= 7 &&
                                                 request[6].size() == protocol::kCurveKeyBytes) {
      Policy& policy = it->second;
      const std::string key = request[6].to_string();
      if (policy.location.empty() || policy.keys.contains(key)) {
        status = "200";
        text = "OK";
        user = z85_of(request[6]);
      } else {
        text = "client key not authorized";
        policy.refusals.warn(
            now, "client refused: CURVE key not in authorized_keys",
            {{"route", policy.route}, {"address", address}, {"client_key", z85_of(request[6])}});
      }
    } else {
      unexpected_.warn(now, "ZAP request refused: no policy for this domain and mechanism",
                       {{"domain", std::string(domain)}, {"mechanism", std::string(mechanism)}});
    }
  }
  const std::string_view request_id =
      request.size() > 1 ? request[1].to_string_view() : std::string_view{};
  socket_.send(zmq::buffer(kZapVersion), zmq::send_flags::sndmore);
  socket_.send(zmq::buffer(request_id), zmq::send_flags::sndmore);
  socket_.send(zmq::buffer(status), zmq::send_flags::sndmore);
  socket_.send(zmq::buffer(text), zmq::send_flags::sndmore);
  socket_.send(zmq::buffer(user), zmq::send_flags::sndmore);
  socket_.send(zmq::message_t(), zmq::send_flags::none);
  return true;
}

}  // namespace tidepool::proxy
