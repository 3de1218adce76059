#pragma once
// Phrases the tools' summary lines share.

#include <cstdint>
#include <string>

namespace gmem::tools {

// " + N private (<how> by the agent, R round trips, M ms)", or "" when no page was private.
// `how`: "sealed" (a source), "imported" (a target).
std::string PrivatePagesText(uint64_t pages, uint64_t round_trips, uint64_t agent_ms, const char* how);

}  // namespace gmem::tools
