#include "vmm/workload.h"

#include <charconv>
#include <vector>

namespace gmem::vmm {
namespace {

constexpr uint64_t kDefaultConvertPages = 2048;

Expected<uint64_t> ParseNumber(std::string_view key, std::string_view value, uint64_t max) {
  uint64_t v = 0;
  auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
  if (ec != std::errc() || ptr != value.data() + value.size() || value.empty()) {
    return InvalidArgument("workload option '" + std::string(key) + "': '" + std::string(value) +
                           "' is not a number");
  }
  if (v > max) {
    return InvalidArgument("workload option '" + std::string(key) + "': " + std::to_string(v) + " exceeds " +
                           std::to_string(max));
  }
  return v;
}

Status ApplyOption(WorkloadSpec& spec, std::string_view key, std::string_view value) {
  if (key == "rate") {
    GMEM_ASSIGN_OR_RETURN(spec.rate, ParseNumber(key, value, 100'000'000));
  } else if (key == "pages") {
    GMEM_ASSIGN_OR_RETURN(spec.pages, ParseNumber(key, value, uint64_t{1} << 31));
  } else if (key == "words") {
    GMEM_ASSIGN_OR_RETURN(uint64_t w, ParseNumber(key, value, 8));
    if (w == 0) return InvalidArgument("workload option 'words' must be 1..8");
    spec.words = static_cast<uint32_t>(w);
  } else if (key == "every") {
    GMEM_ASSIGN_OR_RETURN(uint64_t e, ParseNumber(key, value, 256));
    if (e == 0) return InvalidArgument("workload option 'every' must be 1..256");
    spec.convert_every = static_cast<uint32_t>(e);
  } else if (key == "log") {
    GMEM_ASSIGN_OR_RETURN(uint64_t l, ParseNumber(key, value, 1));
    spec.log_writes = l != 0;
  } else {
    return InvalidArgument("unknown workload option '" + std::string(key) +
                           "' (known: rate, pages, words, every, log)");
  }
  return Status::Ok();
}

}  // namespace

std::string_view WorkloadKindName(WorkloadKind kind) {
  switch (kind) {
    case WorkloadKind::kDirty: return "dirty";
    case WorkloadKind::kConvert: return "convert";
    case WorkloadKind::kIdle: return "idle";
  }
  return "invalid";
}

uint64_t WorkloadSpec::WorkingSet(uint64_t data_npages) const {
  uint64_t want = pages;
  if (want == 0) want = kind == WorkloadKind::kConvert ? kDefaultConvertPages : data_npages;
  return want < data_npages ? want : data_npages;
}

std::string WorkloadSpec::ToString() const {
  return std::string(WorkloadKindName(kind)) + ":rate=" + std::to_string(rate) + ",pages=" + std::to_string(pages) +
         ",words=" + std::to_string(words) + ",every=" + std::to_string(convert_every) +
         ",log=" + (log_writes ? "1" : "0");
}

Expected<WorkloadSpec> ParseWorkload(std::string_view text) {
  WorkloadSpec spec;
  size_t colon = text.find(':');
  std::string_view name = text.substr(0, colon);
  if (name == "dirty") spec.kind = WorkloadKind::kDirty;
  else if (name == "convert") spec.kind = WorkloadKind::kConvert;
  else if (name == "idle") spec.kind = WorkloadKind::kIdle;
  else return InvalidArgument("unknown workload '" + std::string(name) + "' (known: dirty, convert, idle)");
  if (colon == std::string_view::npos) return spec;
  std::string_view rest = text.substr(colon + 1);
  while (!rest.empty()) {
    size_t comma = rest.find(',');
    std::string_view item = rest.substr(0, comma);
    size_t eq = item.find('=');
    if (eq == std::string_view::npos || eq == 0) {
      return InvalidArgument("workload option '" + std::string(item) + "' is not key=value");
    }
    GMEM_RETURN_IF_ERROR(ApplyOption(spec, item.substr(0, eq), item.substr(eq + 1)));
    if (comma == std::string_view::npos) break;
    rest = rest.substr(comma + 1);
    if (rest.empty()) return InvalidArgument("workload options end with ','");
  }
  return spec;
}

}  // namespace gmem::vmm
