// pv: contract-driven falsification harness for LLM inference.
// Exit codes shared by every subcommand: 0 success, 1 a claim failed (falsified,
// overclaimed, diverged), 2 usage or input errors, 3 the environment failed pv (a full or
// unwritable temp dir, a locked evidence dir): no verdict on any claim.
#include <signal.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <exception>
#include <functional>
#include <iostream>
#include <map>
#include <thread>

#include "harness/process.h"
#include "harness/process_tree.h"
#include "harness/temp_files.h"
#include "tools/command.h"

namespace {

// SIGINT/SIGTERM/SIGHUP are blocked in every thread and taken by one thread with sigwait,
// so the cleanup runs in normal context (it may allocate and walk directories): kill the
// running tests and everything they started, remove pv's registered temp files, then die
// of the same signal. Children get the signals unblocked before exec (harness/process.cpp).
void start_signal_thread() {
  static sigset_t set;
  sigemptyset(&set);
  for (int s : {SIGINT, SIGTERM, SIGHUP}) sigaddset(&set, s);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  std::thread([] {
    int sig = 0;
    while (sigwait(&set, &sig) != 0) {
    }
    pv::harness::kill_running_children();
    pv::harness::kill_marked_by_self();
    pv::harness::remove_registered_temps();
    signal(sig, SIG_DFL);
    sigset_t one;
    sigemptyset(&one);
    sigaddset(&one, sig);
    pthread_sigmask(SIG_UNBLOCK, &one, nullptr);
    raise(sig);
    _exit(128 + sig);  // not reached: the default action of these signals ends the process
  }).detach();
}

}  // namespace

namespace pv::tools {
std::vector<CommandInfo>& command_registry() {
  static std::vector<CommandInfo> registry;
  return registry;
}
}  // namespace pv::tools

int main(int argc, char** argv) {
  start_signal_thread();
  // Test processes' orphans reparent to pv, which kills and reaps them (harness/process.h).
  pv::harness::become_child_subreaper();
  CLI::App app{"pv: contract-driven falsification harness for LLM inference"};
  app.require_subcommand(1);
  auto& registry = pv::tools::command_registry();
  std::sort(registry.begin(), registry.end(),
            [](const auto& a, const auto& b) { return a.name < b.name; });
  std::map<CLI::App*, std::function<int()>> actions;
  for (auto& cmd : registry) {
    CLI::App* sub = app.add_subcommand(cmd.name, cmd.summary);
    actions[sub] = cmd.setup(*sub);
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }
  try {
    for (auto& [sub, action] : actions) {
      if (sub->parsed()) return action();
    }
  } catch (const pv::harness::EnvironmentError& e) {
    std::cerr << "pv: environment error: " << e.what() << "\n";
    return 3;
  } catch (const std::exception& e) {
    std::cerr << "pv: error: " << e.what() << "\n";
    return 2;
  }
  return 2;
}
