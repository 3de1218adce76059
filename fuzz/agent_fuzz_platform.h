#pragma once
// The guest side of agent_request_fuzz (fuzz/agent_request_fuzz.cc): a fake guest platform with
// sparse pages that also checks the agent keeps its side of the GuestPlatform contract, private
// pages that carry a canary (so plaintext in shared memory is visible), and the target's checks.

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "agent/guest_platform.h"
#include "agent/wire.h"
#include "base/bytes.h"
#include "base/expected.h"

namespace gmem::fuzz::agent_fuzz {

using agent::kAreaBytes;
using agent::kAreaGpa;
using agent::kPageBytes;
using agent::kPageShift;

// Ends the run with the broken invariant: libFuzzer saves the input as a crash.
[[noreturn]] inline void Fail(const char* what) {
  fprintf(stderr, "agent_request_fuzz: invariant broken: %s\n", what);
  abort();
}

#define FUZZ_CHECK(cond)      \
  do {                        \
    if (!(cond)) ::gmem::fuzz::agent_fuzz::Fail(#cond); \
  } while (0)

inline bool Same(ByteSpan a, ByteSpan b) { return std::equal(a.begin(), a.end(), b.begin(), b.end()); }

inline constexpr std::string_view kCanary = "GMEMKIT-PRIVATE!";

inline bool Contains(ByteSpan haystack, std::string_view needle) {
  ByteSpan n = AsBytes(needle);
  return std::search(haystack.begin(), haystack.end(), n.begin(), n.end()) != haystack.end();
}

inline bool InAgentArea(uint64_t gfn) { return gfn >= (kAreaGpa >> kPageShift) && gfn < ((kAreaGpa + kAreaBytes) >> kPageShift); }

// Private page contents: the canary, then bytes derived from `seed`.
inline Bytes CanaryPage(uint64_t seed) {
  Bytes page(kPageBytes);
  std::memcpy(page.data(), kCanary.data(), kCanary.size());
  uint64_t s = seed * 0x9e3779b97f4a7c15ull + 1;
  for (size_t off = 16; off < kPageBytes; off += 8) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    StoreLe<uint64_t>(page.data() + off, s);
  }
  return page;
}

// A guest platform with sparse pages, which also checks the agent keeps its side of the
// GuestPlatform contract (REQUIRES clauses, never touching the agent area).
class FuzzPlatform final : public agent::GuestPlatform {
 public:
  // `empty`: no page is private at the start.
  FuzzPlatform(uint64_t gfn_limit, bool tracks, bool empty) : gfn_limit_(gfn_limit), tracks_(tracks) {
    if (empty) return;
    for (uint64_t gfn : {uint64_t{0}, uint64_t{1}, uint64_t{319}, uint64_t{512}, uint64_t{513}, uint64_t{600},
                         uint64_t{601}, uint64_t{639}, gfn_limit - 1}) {
      if (gfn < gfn_limit && !InAgentArea(gfn)) private_[gfn] = CanaryPage(gfn);
    }
  }

  uint64_t gfn_limit() const override { return gfn_limit_; }
  bool IsPrivate(uint64_t gfn) const override {
    FUZZ_CHECK(gfn < gfn_limit_);
    return private_.count(gfn) != 0;
  }
  uint64_t NextPrivate(uint64_t gfn) const override {
    auto it = private_.lower_bound(gfn);
    return it == private_.end() ? gfn_limit_ : it->first;
  }
  Status ReadPrivatePage(uint64_t gfn, MutableByteSpan out) override {
    FUZZ_CHECK(gfn < gfn_limit_ && !InAgentArea(gfn));
    FUZZ_CHECK(out.size() == kPageBytes);
    auto it = private_.find(gfn);
    if (it == private_.end()) return InvalidArgument("not private");
    std::memcpy(out.data(), it->second.data(), kPageBytes);
    return Status::Ok();
  }
  Status WritePrivatePage(uint64_t gfn, ByteSpan in) override {
    FUZZ_CHECK(gfn < gfn_limit_ && !InAgentArea(gfn));
    FUZZ_CHECK(in.size() == kPageBytes);
    ++writes_;
    private_[gfn].assign(in.begin(), in.end());
    return Status::Ok();
  }
  bool tracks_private_writes() const override { return tracks_; }
  void ResetExportBaseline() override { exported_.clear(); }
  void NoteExported(uint64_t gfn, ByteSpan page) override {
    FUZZ_CHECK(IsPrivate(gfn));
    exported_[gfn].assign(page.begin(), page.end());
  }
  Expected<uint64_t> CollectDirty(uint64_t cursor, uint32_t max, std::vector<uint64_t>& out) override {
    FUZZ_CHECK(tracks_);
    for (auto it = private_.lower_bound(cursor); it != private_.end(); ++it) {
      if (out.size() >= max) return it->first;
      auto e = exported_.find(it->first);
      if (e == exported_.end() || e->second != it->second) out.push_back(it->first);
    }
    return gfn_limit_;
  }

  uint64_t writes() const { return writes_; }
  const std::map<uint64_t, Bytes>& private_pages() const { return private_; }
  const Bytes* PrivatePage(uint64_t gfn) const {
    auto it = private_.find(gfn);
    return it == private_.end() ? nullptr : &it->second;
  }

 private:
  uint64_t gfn_limit_;
  bool tracks_;
  std::map<uint64_t, Bytes> private_;  // gfn -> contents
  std::unordered_map<uint64_t, Bytes> exported_;
  uint64_t writes_ = 0;
};

}  // namespace gmem::fuzz::agent_fuzz
