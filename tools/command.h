// Subcommand registration: each tools/cmd_<name>.cpp defines one subcommand and
// registers it with PV_COMMAND, so main.cpp never changes when a command is added.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <string>
#include <vector>

namespace pv::tools {

// setup adds the subcommand's options to `app` (a fresh CLI::App subcommand) and
// returns the action run when that subcommand is chosen; the action returns the
// process exit code.
using CommandSetup = std::function<std::function<int()>(CLI::App& sub)>;

struct CommandInfo {
  std::string name;
  std::string summary;
  CommandSetup setup;
};

std::vector<CommandInfo>& command_registry();

struct CommandRegistrar {
  CommandRegistrar(std::string name, std::string summary, CommandSetup setup) {
    command_registry().push_back({std::move(name), std::move(summary), std::move(setup)});
  }
};

}  // namespace pv::tools

#define PV_COMMAND_CAT2(a, b) a##b
#define PV_COMMAND_CAT(a, b) PV_COMMAND_CAT2(a, b)
#define PV_COMMAND(name, summary, setup)                                                      \
  static const ::pv::tools::CommandRegistrar PV_COMMAND_CAT(pv_command_registrar_, __LINE__)( \
      name, summary, setup)
