// pv: contract-driven falsification harness for LLM inference.
// Exit codes shared by every subcommand: 0 success, 1 a claim failed (falsified,
// overclaimed, diverged), 2 usage or input errors.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <exception>
#include <functional>
#include <iostream>
#include <map>

#include "tools/command.h"

namespace pv::tools {
std::vector<CommandInfo>& command_registry() {
  static std::vector<CommandInfo> registry;
  return registry;
}
}  // namespace pv::tools

int main(int argc, char** argv) {
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
  } catch (const std::exception& e) {
    std::cerr << "pv: error: " << e.what() << "\n";
    return 2;
  }
  return 2;
}
