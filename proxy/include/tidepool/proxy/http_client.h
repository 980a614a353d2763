// http_get: the minimal HTTP/1.0 client behind `tidepool status` and `tidepool healthcheck`.
#pragma once

#include <chrono>
#include <optional>
#include <string>

namespace tidepool::proxy {

struct HttpReply {
  int status = 0;
  std::string body;
};

// A minimal HTTP/1.0 GET for `tidepool status` and `tidepool healthcheck`, so the image needs
// no curl. `address` is HOST:PORT; 0.0.0.0 and * mean this host. nullopt when no answer came
// within `timeout`; `error` then says why.
std::optional<HttpReply> http_get(const std::string& address, const std::string& path,
                                  std::chrono::milliseconds timeout, std::string& error);

}  // namespace tidepool::proxy
