#pragma once
// Runs a program from an argument vector (fork + execvp, no shell), so a path or a value with a
// quote, a space or a '$' in it is passed as it is and never interpreted. stdout and stderr are
// captured (read together with poll, so neither pipe can fill up and block the child).
//
//   ProgramResult r = run_program({kBinary, "predict", model, wav, "--json"});
//   r.status   the exit status; 128 + N when killed by signal N; 127 when it could not start
//   r.out      what it wrote to stdout; r.err what it wrote to stderr
//
// Options: the working directory, extra environment variables ("NAME=VALUE"), and stderr merged
// into stdout (as `2>&1` would).
//
//   Killed k = run_killed_when({kBinary, "train", config, "--run-dir", run}, [&] {
//     return std::filesystem::exists(run + "/checkpoint.tsc");
//   });
//   k == Killed::AtReady   it was killed with SIGKILL as soon as the condition held (what a
//                          kill -9 at that instant leaves is on disk)
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <thread>
#include <vector>

namespace tessera::test {

struct ProgramResult {
  int status = 127;
  std::string out, err;
};

struct ProgramOptions {
  std::string cwd;               // "" = this process's
  std::vector<std::string> env;  // "NAME=VALUE", added to this process's environment
  bool merge_stderr = false;     // stderr into `out` (in order), `err` stays empty
};

inline ProgramResult run_program(const std::vector<std::string>& argv,
                                 const ProgramOptions& options = {}) {
  ProgramResult r;
  if (argv.empty()) {
    r.err = "run_program: empty argument vector";
    return r;
  }
  int out_pipe[2], err_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0) {
    r.err = std::string("run_program: pipe: ") + std::strerror(errno);
    return r;
  }
  if (::pipe2(err_pipe, O_CLOEXEC) != 0) {
    r.err = std::string("run_program: pipe: ") + std::strerror(errno);
    ::close(out_pipe[0]);
    ::close(out_pipe[1]);
    return r;
  }
  // Everything the child needs is built here: after fork it only makes system calls (another
  // thread of this process may hold the allocator's lock).
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  std::vector<char*> envp;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    bool overridden = false;
    for (const std::string& kv : options.env) {
      const size_t eq = kv.find('=');
      overridden =
          overridden || (eq != std::string::npos && std::strncmp(*e, kv.c_str(), eq + 1) == 0);
    }
    if (!overridden) envp.push_back(*e);
  }
  for (const std::string& kv : options.env) envp.push_back(const_cast<char*>(kv.c_str()));
  envp.push_back(nullptr);
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(out_pipe[1], STDOUT_FILENO);
    ::dup2(options.merge_stderr ? out_pipe[1] : err_pipe[1], STDERR_FILENO);
    if (!options.cwd.empty() && ::chdir(options.cwd.c_str()) != 0) ::_exit(127);
    ::execvpe(args[0], args.data(), envp.data());
    const char msg[] = "run_program: exec failed\n";
    (void)!::write(STDERR_FILENO, msg, sizeof msg - 1);
    ::_exit(127);
  }
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);
  if (pid < 0) {
    r.err = std::string("run_program: fork: ") + std::strerror(errno);
    ::close(out_pipe[0]);
    ::close(err_pipe[0]);
    return r;
  }
  pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
  std::string* sinks[2] = {&r.out, &r.err};
  int open_fds = 2;
  char buf[8192];
  while (open_fds > 0) {
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      const ssize_t n = ::read(fds[i].fd, buf, sizeof buf);
      if (n > 0) {
        sinks[i]->append(buf, static_cast<size_t>(n));
      } else if (n == 0 || errno != EINTR) {
        ::close(fds[i].fd);
        fds[i].fd = -1;
        --open_fds;
      }
    }
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  r.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return r;
}

// What run_killed_when did: killed the program once `ready` held, found it ended before that,
// or gave up waiting (and killed it), or could not start it.
enum class Killed { AtReady, EndedFirst, TimedOut, NotStarted };

// Starts `argv` (no shell; stdout and stderr discarded) and kills it with SIGKILL as soon as
// `ready()` holds, asked every millisecond for at most `limit`.
inline Killed run_killed_when(const std::vector<std::string>& argv,
                              const std::function<bool()>& ready,
                              std::chrono::milliseconds limit = std::chrono::minutes(5)) {
  if (argv.empty()) return Killed::NotStarted;
  std::vector<char*> args;  // built before fork (see run_program)
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const pid_t pid = ::fork();
  if (pid < 0) return Killed::NotStarted;
  if (pid == 0) {
    const int null = ::open("/dev/null", O_WRONLY);
    ::dup2(null, STDOUT_FILENO);
    ::dup2(null, STDERR_FILENO);
    ::execvp(args[0], args.data());
    ::_exit(127);
  }
  const auto deadline = std::chrono::steady_clock::now() + limit;
  Killed outcome = Killed::TimedOut;
  int status = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    if (ready()) {
      outcome = Killed::AtReady;
      break;
    }
    if (::waitpid(pid, &status, WNOHANG) == pid) return Killed::EndedFirst;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ::kill(pid, SIGKILL);
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  // Ended by itself between the last look and the kill: not what a kill at `ready` leaves.
  if (!(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)) return Killed::EndedFirst;
  return outcome;
}

}  // namespace tessera::test
