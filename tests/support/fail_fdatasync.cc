// LD_PRELOAD shim for integration tests: fdatasync(2) fails with EIO while the file named by
// TIDEPOOL_TEST_FAIL_FDATASYNC exists, so a test can make the real binary's spool see a
// failing disk and heal it again, without a special device.
#include <dlfcn.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>

extern "C" int fdatasync(int fd) {
  using Fdatasync = int (*)(int);
  static const auto real = reinterpret_cast<Fdatasync>(::dlsym(RTLD_NEXT, "fdatasync"));
  const char* flag = std::getenv("TIDEPOOL_TEST_FAIL_FDATASYNC");
  if ((flag != nullptr && ::access(flag, F_OK) == 0) || real == nullptr) {
    errno = EIO;
    return -1;
  }
  return real(fd);
}
