// The pure conversion handler, fed synthetic kvm_run exits (this host's KVM never produces
// KVM_EXIT_HYPERCALL or KVM_EXIT_MEMORY_FAULT, real SNP/TDX hosts do).

#include "vmm/conversion.h"

#include <cerrno>
#include <cstring>

#include "memory/kvm_uapi.h"
#include "tests/testutil/testutil.h"

namespace gmem::vmm {
namespace {

using memory::PageAttr;
using ::gmem::testing::StatusIs;

struct kvm_run Hypercall(uint64_t nr, uint64_t gpa, uint64_t npages, uint64_t attrs) {
  struct kvm_run run = {};
  run.exit_reason = KVM_EXIT_HYPERCALL;
  run.hypercall.nr = nr;
  run.hypercall.args[0] = gpa;
  run.hypercall.args[1] = npages;
  run.hypercall.args[2] = attrs;
  return run;
}

struct kvm_run MemoryFault(uint64_t flags, uint64_t gpa, uint64_t size) {
  struct kvm_run run = {};
  run.exit_reason = KVM_EXIT_MEMORY_FAULT;
  memory::uapi::MemoryFaultExit fault{flags, gpa, size};
  std::memcpy(reinterpret_cast<std::byte*>(&run) + memory::uapi::kKvmRunExitUnionOffset, &fault, sizeof(fault));
  return run;
}

TEST(ConversionTest, HypercallToPrivate4K) {
  auto req = DecodeConversionExit(Hypercall(KVM_HC_MAP_GPA_RANGE, 0x203000, 3, KVM_MAP_GPA_RANGE_ENCRYPTED));
  ASSERT_OK(req);
  EXPECT_EQ(req->gpa, 0x203000u);
  EXPECT_EQ(req->size_bytes, 3u * 4096);
  EXPECT_EQ(req->attr, PageAttr::kPrivate);
  EXPECT_EQ(req->origin, ConversionOrigin::kHypercall);
}

TEST(ConversionTest, HypercallToShared2M) {
  auto req = DecodeConversionExit(
      Hypercall(KVM_HC_MAP_GPA_RANGE, 0x400000, 512, KVM_MAP_GPA_RANGE_DECRYPTED | KVM_MAP_GPA_RANGE_PAGE_SZ_2M));
  ASSERT_OK(req);
  EXPECT_EQ(req->size_bytes, 2u << 20);
  EXPECT_EQ(req->attr, PageAttr::kShared);
}

TEST(ConversionTest, HypercallOtherThanMapGpaRangeIsRejected) {
  EXPECT_THAT(DecodeConversionExit(Hypercall(11, 0x1000, 1, 0)),
              StatusIs(Code::kInvalidArgument, "is not KVM_HC_MAP_GPA_RANGE"));
}

TEST(ConversionTest, MalformedHypercallsAreRejected) {
  const uint64_t nr = KVM_HC_MAP_GPA_RANGE;
  EXPECT_THAT(DecodeConversionExit(Hypercall(nr, 0x1001, 1, 0)), StatusIs(Code::kInvalidArgument, "not 4 KiB aligned"));
  EXPECT_THAT(DecodeConversionExit(Hypercall(nr, 0x1000, 0, 0)), StatusIs(Code::kInvalidArgument, "no pages"));
  EXPECT_THAT(DecodeConversionExit(Hypercall(nr, 0x1000, 1, 0x100)), StatusIs(Code::kInvalidArgument, "unknown attribute bits"));
  EXPECT_THAT(DecodeConversionExit(Hypercall(nr, 0x1000, 1, 3)), StatusIs(Code::kInvalidArgument, "two page sizes"));
  EXPECT_THAT(DecodeConversionExit(Hypercall(nr, 0x1000, 512, KVM_MAP_GPA_RANGE_PAGE_SZ_2M)),
              StatusIs(Code::kInvalidArgument, "not aligned to the named page size"));
  EXPECT_THAT(DecodeConversionExit(Hypercall(nr, 0x200000, 3, KVM_MAP_GPA_RANGE_PAGE_SZ_2M)),
              StatusIs(Code::kInvalidArgument, "not aligned to the named page size"));
  EXPECT_THAT(DecodeConversionExit(Hypercall(nr, 0xfffffffffffff000ULL, 2, 0)), StatusIs(Code::kInvalidArgument, "overflows"));
  EXPECT_THAT(DecodeConversionExit(Hypercall(nr, 0x1000, uint64_t{1} << 62, 0)), StatusIs(Code::kInvalidArgument, "overflows"));
}

TEST(ConversionTest, MemoryFaultPrivateFlagConvertsToPrivate) {
  auto req = DecodeConversionExit(MemoryFault(KVM_MEMORY_EXIT_FLAG_PRIVATE, 0x5000, 0x2000));
  ASSERT_OK(req);
  EXPECT_EQ(req->gpa, 0x5000u);
  EXPECT_EQ(req->size_bytes, 0x2000u);
  EXPECT_EQ(req->attr, PageAttr::kPrivate);
  EXPECT_EQ(req->origin, ConversionOrigin::kMemoryFault);
}

TEST(ConversionTest, MemoryFaultWithoutPrivateFlagConvertsToShared) {
  auto req = DecodeConversionExit(MemoryFault(0x2 /* write access */, 0x7000, 0x1000));
  ASSERT_OK(req);
  EXPECT_EQ(req->attr, PageAttr::kShared);
}

TEST(ConversionTest, MemoryFaultOfUnknownSizeOrUnalignedRangeCoversWholePages) {
  auto unknown = DecodeConversionExit(MemoryFault(KVM_MEMORY_EXIT_FLAG_PRIVATE, 0x5123, 0));
  ASSERT_OK(unknown);
  EXPECT_EQ(unknown->gpa, 0x5000u);
  EXPECT_EQ(unknown->size_bytes, 0x1000u);
  auto straddle = DecodeConversionExit(MemoryFault(0, 0x5ff8, 16));
  ASSERT_OK(straddle);
  EXPECT_EQ(straddle->gpa, 0x5000u);
  EXPECT_EQ(straddle->size_bytes, 0x2000u);
}

TEST(ConversionTest, MalformedMemoryFaultsAreRejected) {
  EXPECT_THAT(DecodeConversionExit(MemoryFault(uint64_t{1} << 9, 0x5000, 0x1000)),
              StatusIs(Code::kInvalidArgument, "unknown flags"));
  EXPECT_THAT(DecodeConversionExit(MemoryFault(0, uint64_t{1} << 60, 0x1000)), StatusIs(Code::kInvalidArgument, "out of range"));
  EXPECT_THAT(DecodeConversionExit(MemoryFault(0, 0x1000, UINT64_MAX)), StatusIs(Code::kInvalidArgument, "out of range"));
}

TEST(ConversionTest, OtherExitsCarryNoRequest) {
  struct kvm_run run = {};
  run.exit_reason = KVM_EXIT_IO;
  EXPECT_THAT(DecodeConversionExit(run), StatusIs(Code::kInvalidArgument, "carries no conversion request"));
}

TEST(ConversionTest, PortIoRequestsUseTheSameRules) {
  auto req = DecodeMapGpaRange(0x300000, 1, KVM_MAP_GPA_RANGE_ENCRYPTED, ConversionOrigin::kPortIo);
  ASSERT_OK(req);
  EXPECT_EQ(req->origin, ConversionOrigin::kPortIo);
  EXPECT_THAT(DecodeMapGpaRange(0x300001, 1, 0, ConversionOrigin::kPortIo), StatusIs(Code::kInvalidArgument, "aligned"));
}

TEST(ConversionTest, CompletionWritesTheHypercallResult) {
  struct kvm_run run = Hypercall(KVM_HC_MAP_GPA_RANGE, 0x1000, 1, 0);
  run.hypercall.ret = 77;
  CompleteConversionExit(run, Status::Ok());
  EXPECT_EQ(run.hypercall.ret, 0u);
  CompleteConversionExit(run, InvalidArgument("bad"));
  EXPECT_EQ(static_cast<int64_t>(run.hypercall.ret), -EINVAL);
  CompleteConversionExit(run, Unsupported("no private memory"));
  EXPECT_EQ(static_cast<int64_t>(run.hypercall.ret), -ENOSYS);
  struct kvm_run fault = MemoryFault(0, 0x1000, 0x1000);
  struct kvm_run before = fault;
  CompleteConversionExit(fault, InvalidArgument("bad"));
  EXPECT_EQ(std::memcmp(&fault, &before, sizeof(fault)), 0);
}

}  // namespace
}  // namespace gmem::vmm
