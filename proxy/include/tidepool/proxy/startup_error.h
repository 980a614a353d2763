// The one exception type of start-up problems an operator must fix (a bind failed, a spool
// directory is not writable, the fd limit is too low): fatal, with its message, at start.
#pragma once

#include <stdexcept>

namespace tidepool::proxy {

class StartupError : public std::runtime_error {
  using std::runtime_error::runtime_error;
};

}  // namespace tidepool::proxy
