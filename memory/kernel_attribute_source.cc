#include "memory/kernel_attribute_source.h"

#include <sys/ioctl.h>

#include <cerrno>
#include <string>

#include "memory/kvm_uapi.h"

namespace gmem::memory {

Expected<KernelAttributeSource> KernelAttributeSource::Create(const GuestMemfd& gmem, uint64_t gmem_offset,
                                                              uint64_t npages) {
  if (!IsPageAligned(gmem_offset) || gmem_offset > gmem.size_bytes() ||
      npages > (gmem.size_bytes() - gmem_offset) >> kPageShift) {
    return InvalidArgument("kernel attributes: region [" + std::to_string(gmem_offset) + ", +" +
                           std::to_string(npages) + " pages) outside the guest_memfd");
  }
  // SAFETY: probe request; size 0 changes nothing (EINVAL where the ioctl exists, ENOTTY where not).
  uapi::MemoryAttributes2 probe = {};
  probe.offset = gmem_offset;
  if (::ioctl(gmem.fd(), KVM_SET_MEMORY_ATTRIBUTES2, &probe) != 0 && errno == ENOTTY) {
    return ErrnoStatus(Code::kUnsupported,
                       "per-guest_memfd memory attributes (KVM_SET_MEMORY_ATTRIBUTES2) not offered by this kernel");
  }
  GMEM_ASSIGN_OR_RETURN(GuestMemfd own, gmem.Duplicate());
  PageAttr initial = gmem.init_shared() ? PageAttr::kShared : PageAttr::kPrivate;
  return KernelAttributeSource(std::move(own), gmem_offset, AttributeMap(npages, initial));
}

Status KernelAttributeSource::SetRun(const PageRange& run, PageAttr attr) {
  // SAFETY: request for the guest_memfd ioctl; reserved words and flags must be zero.
  uapi::MemoryAttributes2 req = {};
  req.offset = gmem_offset_ + (run.first << kPageShift);
  req.size = run.count << kPageShift;
  req.attributes = attr == PageAttr::kPrivate ? KVM_MEMORY_ATTRIBUTE_PRIVATE : 0;
  if (::ioctl(gmem_.fd(), KVM_SET_MEMORY_ATTRIBUTES2, &req) != 0) {
    int err = errno;
    std::string msg = "KVM_SET_MEMORY_ATTRIBUTES2 pages [" + std::to_string(run.first) + ", +" +
                      std::to_string(run.count) + ") to " + std::string(PageAttrName(attr));
    if (err == EAGAIN) {
      msg += ": page " + std::to_string((req.error_offset - gmem_offset_) >> kPageShift) +
             " has extra references (pinned?)";
    }
    return Status(Code::kKvm, msg, err);
  }
  return Status::Ok();
}

Status KernelAttributeSource::Convert(uint64_t first_page, uint64_t count, PageAttr attr) {
  // Collect the runs that change first: converting mutates the map being walked.
  GMEM_ASSIGN_OR_RETURN(std::vector<PageRange> changing, map_.RunsToConvert(first_page, count, attr));
  for (const PageRange& run : changing) {
    GMEM_RETURN_IF_ERROR(SetRun(run, attr));
    GMEM_RETURN_IF_ERROR(map_.SetRange(run.first, run.count, attr));
    log_.push_back(run);
  }
  return Status::Ok();
}

std::vector<PageRange> KernelAttributeSource::TakeConversions() {
  std::vector<PageRange> out;
  out.swap(log_);
  return out;
}

}  // namespace gmem::memory
