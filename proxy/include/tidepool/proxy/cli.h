// The command line's entry point: run, check-config, status, top, healthcheck, keygen,
// --help (also per command), --version.
#pragma once

namespace tidepool::proxy {

// The whole command line: run, check-config, status, top, healthcheck, keygen, --help,
// --version.
// Returns the process exit code: 0 success, 1 runtime failure, 2 bad usage or config.
int run_cli(int argc, char** argv);

}  // namespace tidepool::proxy
