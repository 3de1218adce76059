#include "tests/vmm/vmm_process.h"

namespace gmem::vmm::testing {

std::string ChecksumIn(const std::string& out) {
  size_t at = out.rfind("checksum=");
  if (at == std::string::npos) return "";
  size_t end = out.find('\n', at);
  return out.substr(at + 9, end == std::string::npos ? std::string::npos : end - at - 9);
}

std::string RunForChecksum(const std::vector<std::string>& args) {
  VmmProcess p(args);
  int rc = p.Wait();
  std::string sum = ChecksumIn(p.out());
  if (rc != 0 || sum.size() != 16) {
    ADD_FAILURE() << "gmem-vmm exited " << rc << ", stdout '" << p.out() << "', stderr '" << p.err() << "'";
    return "";
  }
  return sum;
}

}  // namespace gmem::vmm::testing
