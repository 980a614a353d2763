// StartupError: the one exception for a start-up problem an operator must fix. Its own header
// so that the HTTP server and the loop state can throw it without pulling in Route.
#pragma once

#include <stdexcept>

namespace tidepool::proxy {

// A start-up problem an operator must fix (bind failed, …): fatal, with this message.
class StartupError : public std::runtime_error {
  using std::runtime_error::runtime_error;
};

}  // namespace tidepool::proxy
