#include "tools/report_text.h"

namespace gmem::tools {

std::string PrivatePagesText(uint64_t pages, uint64_t round_trips, uint64_t agent_ms, const char* how) {
  if (pages == 0) return "";
  return " + " + std::to_string(pages) + " private (" + how + " by the agent, " + std::to_string(round_trips) +
         " round trips, " + std::to_string(agent_ms) + " ms)";
}

}  // namespace gmem::tools
