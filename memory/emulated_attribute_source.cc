#include "memory/emulated_attribute_source.h"

#include <cstring>
#include <string>

namespace gmem::memory {
namespace {

uint64_t SplitMix64(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

}  // namespace

std::string_view ConversionContentName(ConversionContent content) {
  switch (content) {
    case ConversionContent::kPreserve: return "preserve";
    case ConversionContent::kZero: return "zero";
    case ConversionContent::kScramble: return "scramble";
  }
  return "invalid";
}

Expected<EmulatedAttributeSource> EmulatedAttributeSource::Create(uint64_t npages, PageAttr initial,
                                                                  GuestMemfdMapping* mapping, uint64_t first_page,
                                                                  EmulatedAttributeOptions options) {
  if (!IsValidPageAttr(initial)) return InvalidArgument("emulated attributes: invalid initial attribute");
  if (options.content != ConversionContent::kPreserve && mapping == nullptr) {
    return InvalidArgument("emulated attributes: content policy '" +
                           std::string(ConversionContentName(options.content)) + "' needs the guest_memfd mapping");
  }
  if (mapping != nullptr && (first_page > mapping->npages() || npages > mapping->npages() - first_page)) {
    return InvalidArgument("emulated attributes: region pages [" + std::to_string(first_page) + ", +" +
                           std::to_string(npages) + ") outside the mapping");
  }
  EmulatedAttributeSource source(npages, initial, mapping, first_page, options);
  if (mapping != nullptr) GMEM_RETURN_IF_ERROR(mapping->ApplyAttributes(source.map_, first_page));
  return source;
}

Status EmulatedAttributeSource::ApplyContentPolicy(const PageRange& run) {
  switch (options_.content) {
    case ConversionContent::kPreserve: return Status::Ok();
    case ConversionContent::kZero: return mapping_->PunchHole(first_page_ + run.first, run.count);
    case ConversionContent::kScramble: {
      uint64_t state = options_.scramble_seed ^ (conversions_done_ * 0xd6e8feb86659fd93ULL);
      for (uint64_t p = run.first; p < run.end(); ++p) {
        // SAFETY: run lies inside the region, which Create() checked lies inside the mapping; the
        // page is readable and writable here (before PROT_NONE, or after un-protecting).
        std::byte* page = mapping_->PageAddress(first_page_ + p);
        for (uint64_t off = 0; off < kPageSize; off += sizeof(uint64_t)) {
          uint64_t v = SplitMix64(state);
          std::memcpy(page + off, &v, sizeof(v));
        }
      }
      return Status::Ok();
    }
  }
  return InvalidArgument("invalid conversion content policy");
}

Status EmulatedAttributeSource::ConvertRun(const PageRange& run, PageAttr attr) {
  if (mapping_ != nullptr) {
    if (attr == PageAttr::kPrivate) {
      // Contents change while the page is still ours to write, then it disappears from view.
      GMEM_RETURN_IF_ERROR(ApplyContentPolicy(run));
      GMEM_RETURN_IF_ERROR(mapping_->ProtectNone(first_page_ + run.first, run.count));
    } else {
      GMEM_RETURN_IF_ERROR(mapping_->ProtectReadWrite(first_page_ + run.first, run.count));
      GMEM_RETURN_IF_ERROR(ApplyContentPolicy(run));
    }
  }
  GMEM_RETURN_IF_ERROR(map_.SetRange(run.first, run.count, attr));
  log_.push_back(run);
  ++conversions_done_;
  return Status::Ok();
}

Status EmulatedAttributeSource::Convert(uint64_t first_page, uint64_t count, PageAttr attr) {
  // Collect the runs that change first: converting mutates the map being walked.
  GMEM_ASSIGN_OR_RETURN(std::vector<PageRange> changing, map_.RunsToConvert(first_page, count, attr));
  for (const PageRange& run : changing) {
    Status s = ConvertRun(run, attr);
    if (!s.ok()) {
      return s.WithContext("convert pages [" + std::to_string(run.first) + ", +" + std::to_string(run.count) + ") to " +
                           std::string(PageAttrName(attr)));
    }
  }
  return Status::Ok();
}

std::vector<PageRange> EmulatedAttributeSource::TakeConversions() {
  std::vector<PageRange> out;
  out.swap(log_);
  return out;
}

}  // namespace gmem::memory
