#pragma once
// Invariant checks for the fuzz targets: a broken invariant aborts, which libFuzzer reports as a
// crash and saves the input. Unlike assert(), they stay on whatever the build type.

#include <cstdio>
#include <cstdlib>

#define ATW_FUZZ_CHECK(cond)                                                            \
  do {                                                                                  \
    if (!(cond)) {                                                                      \
      std::fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                     \
    }                                                                                   \
  } while (false)
