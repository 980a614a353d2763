// The tidepool binary: everything is in the proxy library, behind run_cli.
#include "tidepool/proxy/cli.h"

int main(int argc, char** argv) { return tidepool::proxy::run_cli(argc, argv); }
