// The command line's entry point: run, check-config, status, healthcheck, keygen, --help,
// --version.
#pragma once

namespace tidepool::proxy {

// The whole command line: run, check-config, status, healthcheck, --help, --version.
// Returns the process exit code: 0 success, 1 runtime failure, 2 bad usage or config.
int run_cli(int argc, char** argv);

}  // namespace tidepool::proxy
