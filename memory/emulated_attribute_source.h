#pragma once
// EmulatedAttributeSource: emulated CoCo. The attribute table lives in the VMM (here: in this
// object), fed by the guest's page-state requests; this kernel has no private memory of its own
// (reference §1.4, §2.2: ENOTTY). To behave like the real thing where the toolkit can see it:
//   - the toolkit's mapping of a private page is PROT_NONE (a stray read faults, as the kernel's
//     SIGBUS would);
//   - what a conversion does to the contents is a platform property, so it is a policy here:
//     preserve, zero or scramble (DESIGN.md, "Guest memory and attributes").
// Not thread-safe: the VMM serialises conversions (and must not convert while the toolkit reads
// the pages being converted).

#include <cstdint>
#include <string_view>
#include <vector>

#include "base/expected.h"
#include "memory/attribute_source.h"
#include "memory/guest_memfd_mapping.h"

namespace gmem::memory {

// What a conversion does to the page contents.
enum class ConversionContent : uint8_t {
  kPreserve = 1,  // contents survive (pKVM-like)
  kZero = 2,      // pages read as zeros afterwards (punched out of the guest_memfd)
  kScramble = 3,  // pages hold garbage afterwards (firmware re-keying, SNP-like)
};
std::string_view ConversionContentName(ConversionContent content);

struct EmulatedAttributeOptions {
  ConversionContent content = ConversionContent::kPreserve;
  uint64_t scramble_seed = 0x9e3779b97f4a7c15ULL;
};

class EmulatedAttributeSource final : public AttributeSource {
 public:
  // A region of `npages` pages, all `initial`. When `mapping` is given, the region is its pages
  // [first_page, first_page + npages) and the source keeps it in step with the table (private
  // runs PROT_NONE, applied right away). kZero and kScramble need a mapping (kInvalidArgument
  // otherwise). REQUIRES: `mapping` outlives this source.
  static Expected<EmulatedAttributeSource> Create(uint64_t npages, PageAttr initial, GuestMemfdMapping* mapping,
                                                  uint64_t first_page, EmulatedAttributeOptions options = {});

  std::string_view name() const override { return "emulated (VMM attribute table)"; }
  const AttributeMap& attributes() const override { return map_; }
  Status Convert(uint64_t first_page, uint64_t count, PageAttr attr) override;
  std::vector<PageRange> TakeConversions() override;

  const EmulatedAttributeOptions& options() const { return options_; }

 private:
  EmulatedAttributeSource(uint64_t npages, PageAttr initial, GuestMemfdMapping* mapping, uint64_t first_page,
                          EmulatedAttributeOptions options)
      : map_(npages, initial), mapping_(mapping), first_page_(first_page), options_(options) {}
  // Converts one run whose pages all differ from `attr`.
  Status ConvertRun(const PageRange& run, PageAttr attr);
  Status ApplyContentPolicy(const PageRange& run);

  AttributeMap map_;
  GuestMemfdMapping* mapping_ = nullptr;
  uint64_t first_page_ = 0;
  EmulatedAttributeOptions options_;
  uint64_t conversions_done_ = 0;  // varies the scramble pattern between conversions
  std::vector<PageRange> log_;
};

}  // namespace gmem::memory
