#pragma once

#include <map>
#include <string>
#include <vector>

namespace atw::testing {

// A program, its arguments and its environment, laid out in memory before fork().
//
// After fork() in a process with other threads, the child may make only async-signal-safe calls
// until it execs: another thread may have held the allocator's lock at the moment of the fork,
// and a child that allocates then waits for it forever. (CI saw exactly that: a `maintain` child
// forked beside a writer thread hung without logging a line.) So the child only calls exec().
class ExecImage {
 public:
  // argv[0] is looked up in PATH unless it contains a '/'. `env` adds to, or replaces, the
  // variables of this process's environment.
  explicit ExecImage(std::vector<std::string> argv,
                     const std::map<std::string, std::string>& env = {});
  ExecImage(const ExecImage&) = delete;  // the pointers point into the strings
  ExecImage& operator=(const ExecImage&) = delete;

  // execve()s the program; returns only if that failed. Async-signal-safe.
  void exec() const;

 private:
  std::string path_;
  std::vector<std::string> argv_, env_;
  std::vector<char*> argv_ptrs_, env_ptrs_;
};

}  // namespace atw::testing
