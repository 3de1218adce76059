// gmem-snapshot: offline snapshots. Subcommands so far: inspect, verify.
// The logic lives in snapshot/; this file parses flags and prints.

#include <CLI/CLI.hpp>

#include <cstdio>
#include <string>

#include "base/bytes.h"
#include "format/records.h"
#include "snapshot/image_summary.h"
#include "tools/cli_parse.h"
#include "tools/exit_codes.h"
#include "tools/key_args.h"
#include "transport/fd_channel.h"

namespace gmem::tools {
namespace {

constexpr std::string_view kTool = "gmem-snapshot";

const char* CipherName(format::Cipher c) { return c == format::Cipher::kAes256Gcm ? "aes-256-gcm" : "none"; }
const char* WrapName(format::KeyWrap w) {
  switch (w) {
    case format::KeyWrap::kKeyFile: return "key file";
    case format::KeyWrap::kPassphrase: return "passphrase";
    default: return "no key";
  }
}
const char* WrapId(format::KeyWrap w) {
  switch (w) {
    case format::KeyWrap::kKeyFile: return "key-file";
    case format::KeyWrap::kPassphrase: return "passphrase";
    default: return "none";
  }
}

std::string Json(const snapshot::ImageSummary& s, bool verified) {
  const format::ImageHeader& h = s.header;
  std::string out = "{\"version\":\"" + std::to_string(h.version_major) + "." + std::to_string(h.version_minor) +
                    "\",\"stream_id\":\"" + ToHex(h.stream_id) + "\",\"parent\":" +
                    (h.has_parent() ? "\"" + ToHex(h.parent_stream_id) + "\"" : std::string("null")) +
                    ",\"cipher\":\"" + CipherName(h.cipher) + "\",\"key_wrap\":\"" + WrapId(h.key_wrap) +
                    "\",\"compression\":\"" + (h.compression == format::Compression::kZstd ? "zstd" : "none") +
                    "\",\"channels\":" + std::to_string(h.channel_count) + ",\"verified\":" +
                    (verified ? "true" : "false") + ",\"regions\":[";
  if (s.layout) {
    for (size_t i = 0; i < s.layout->regions.size(); ++i) {
      const format::Region& r = s.layout->regions[i];
      out += (i ? "," : "") + std::string("{\"id\":") + std::to_string(r.id) + ",\"gpa_base\":" +
             std::to_string(r.gpa_base) + ",\"size_bytes\":" + std::to_string(r.size_bytes) + ",\"page_size\":" +
             std::to_string(r.page_size) + ",\"gmem_offset\":" + std::to_string(r.gmem_offset) + "}";
    }
  }
  out += "],\"records\":{";
  for (uint8_t t = 1; t <= 7; ++t) {
    out += (t > 1 ? "," : "") + std::string("\"") + format::RecordTypeName(static_cast<format::RecordType>(t)) +
           "\":" + std::to_string(s.records_by_type[t]);
  }
  out += "},\"data_pages\":" + std::to_string(s.data_pages) + ",\"zero_pages\":" + std::to_string(s.zero_pages) +
         ",\"private_pages\":" + std::to_string(s.private_pages) + ",\"raw_bytes\":" + std::to_string(s.raw_bytes) +
         ",\"stored_bytes\":" + (verified ? std::string("null") : std::to_string(s.stored_bytes)) + ",\"image_bytes\":" + std::to_string(s.image_bytes) + "}";
  return out;
}

void PrintText(const std::string& file, const snapshot::ImageSummary& s, bool verified) {
  const format::ImageHeader& h = s.header;
  std::printf("image        %s (%llu bytes)%s\n", file.c_str(), static_cast<unsigned long long>(s.image_bytes),
              verified ? ", verified" : ", not verified (inspect reads no key)");
  std::printf("format       %u.%u\n", h.version_major, h.version_minor);
  std::printf("stream id    %s\n", ToHex(h.stream_id).c_str());
  std::printf("parent       %s\n", h.has_parent() ? ToHex(h.parent_stream_id).c_str() : "none");
  std::printf("encryption   %s, %s%s\n", CipherName(h.cipher), WrapName(h.key_wrap),
              h.key_wrap == format::KeyWrap::kKeyFile ? (" (key id " + ToHex(h.key_id) + ")").c_str() : "");
  std::printf("compression  %s\n", h.compression == format::Compression::kZstd ? "zstd" : "none");
  if (s.layout) {
    std::printf("layout       %zu regions\n", s.layout->regions.size());
    for (const format::Region& r : s.layout->regions) {
      std::printf("  region %u: gpa 0x%llx, %llu pages of %u bytes, gmem offset 0x%llx\n", r.id,
                  static_cast<unsigned long long>(r.gpa_base), static_cast<unsigned long long>(r.npages()),
                  r.page_size, static_cast<unsigned long long>(r.gmem_offset));
    }
  }
  std::printf("records      %llu:", static_cast<unsigned long long>(s.records));
  for (uint8_t t = 1; t <= 7; ++t) {
    std::printf(" %s %llu", format::RecordTypeName(static_cast<format::RecordType>(t)),
                static_cast<unsigned long long>(s.records_by_type[t]));
  }
  std::printf("\npages        %llu data, %llu zero, %llu private\n", static_cast<unsigned long long>(s.data_pages),
              static_cast<unsigned long long>(s.zero_pages), static_cast<unsigned long long>(s.private_pages));
  if (!verified) {
    std::printf("bytes        raw %llu, stored %llu\n", static_cast<unsigned long long>(s.raw_bytes),
                static_cast<unsigned long long>(s.stored_bytes));
  }
}

int RunInspect(const std::string& file, bool json) {
  auto channel = transport::OpenFileForRead(file);
  if (!channel.ok()) return Fail(kTool, "inspect", channel.status());
  auto summary = snapshot::Summarize(*channel);
  if (!summary.ok()) return Fail(kTool, "inspect '" + file + "'", summary.status());
  if (json) {
    std::printf("%s\n", Json(*summary, false).c_str());
  } else {
    PrintText(file, *summary, false);
  }
  return kExitOk;
}

int RunVerify(const std::string& file, const KeyArgs& key_args, bool json, bool quiet) {
  auto key = LoadKey(key_args);
  if (!key.ok()) return Fail(kTool, "verify", key.status());
  auto channel = transport::OpenFileForRead(file);
  if (!channel.ok()) return Fail(kTool, "verify", channel.status());
  auto summary = snapshot::Verify(*channel, *key, key_args.insecure);
  if (!summary.ok()) return Fail(kTool, "verify '" + file + "'", summary.status());
  if (json) {
    std::printf("%s\n", Json(*summary, true).c_str());
  } else if (!quiet) {
    PrintText(file, *summary, true);
  }
  return kExitOk;
}

}  // namespace
}  // namespace gmem::tools

int main(int argc, char** argv) {
  using namespace gmem::tools;
  CLI::App app{"gmem-snapshot: offline snapshots of guest_memfd VMs (see README.md and format/FORMAT.md)"};
  app.require_subcommand(1);
  bool quiet = false;
  bool json = false;
  app.add_flag("-q,--quiet", quiet, "print nothing on success");
  app.add_flag("--json", json, "print one JSON object instead of text");

  std::string file;
  CLI::App* inspect = app.add_subcommand("inspect", "show an image's header, layout and counts (no key needed)");
  inspect->add_option("FILE", file, "the image")->required();
  inspect->fallthrough();  // -q and --json may follow the subcommand

  KeyArgs key_args;
  CLI::App* verify = app.add_subcommand("verify", "decrypt and check every record and the END digest");
  verify->add_option("FILE", file, "the image")->required();
  verify->fallthrough();
  AddKeyFlags(*verify, key_args);

  if (auto code = ParseArgs(app, argc, argv, kTool)) return *code;
  if (inspect->parsed()) return RunInspect(file, json);
  return RunVerify(file, key_args, json, quiet);
}
