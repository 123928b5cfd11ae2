// Test-only fault injection, loaded into the unmodified worker binary with LD_PRELOAD (the
// production binary carries no hook): in the middle of a database write whose COPY data holds
// the bytes of ATW_FAULT_CRASH_MARKER (e.g. a device id) the worker dies by SIGKILL; with
// ATW_FAULT_HANG_MARKER, the writing thread blocks for ever instead. Every delivery of a
// message from that device therefore crashes or hangs the worker, the cases the DLQ's
// MAX_DELIVERIES safety net (and, for a hang, the /healthz stall check) exists for.

#include <dlfcn.h>
#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

struct pg_conn;

namespace {

bool holds(const char* buffer, int nbytes, const char* marker) {
  return marker != nullptr && *marker != '\0' && nbytes > 0 &&
         memmem(buffer, static_cast<size_t>(nbytes), marker, std::strlen(marker)) != nullptr;
}

}  // namespace

extern "C" int PQputCopyData(pg_conn* conn, const char* buffer, int nbytes) {
  using Real = int (*)(pg_conn*, const char*, int);
  static const Real real = reinterpret_cast<Real>(dlsym(RTLD_NEXT, "PQputCopyData"));
  static const char* const crash = std::getenv("ATW_FAULT_CRASH_MARKER");
  static const char* const hang = std::getenv("ATW_FAULT_HANG_MARKER");
  if (holds(buffer, nbytes, crash)) raise(SIGKILL);
  if (holds(buffer, nbytes, hang)) {
    while (true) pause();
  }
  return real(conn, buffer, nbytes);
}
