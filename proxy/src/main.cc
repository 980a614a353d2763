#include "tidepool/proxy/cli.h"

int main(int argc, char** argv) { return tidepool::proxy::run_cli(argc, argv); }
