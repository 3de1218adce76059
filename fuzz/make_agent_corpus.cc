// make_agent_fuzz_corpus DIR: writes the seed corpus of the agent_request_fuzz target into DIR
// (the checked-in copy lives in fuzz/corpus/agent_request_fuzz/). The input encoding is described
// in fuzz/agent_request_fuzz_input.h.
//
// Seeds: valid requests of every message type (HELLO in each role and mode, PEER, EXPORT,
// IMPORT with blobs the target seals, DIRTY, ABORT, FINISH in both roles with manifests the
// target seals) from each session state, a few requests the agent must refuse (bad magic, another
// version, a replayed or misaddressed blob, each way of breaking a manifest), and one input per
// direct decoder. Every seed is the same on every run (the platform secret is fixed and
// Ed25519 signatures are deterministic; the X25519 keys and salts drawn at fuzz time are not in
// the seeds).
//
// Built by the fuzz preset (fuzz/CMakeLists.txt) as build-fuzz/bin/make_agent_fuzz_corpus; it
// needs neither libFuzzer nor clang, only gmemkit_agent.

#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "agent/blob.h"
#include "agent/key_agreement.h"
#include "agent/messages.h"
#include "agent/platform_key.h"
#include "agent/wire.h"
#include "fuzz/agent_request_fuzz_input.h"

namespace gmem::fuzz {
namespace {

using namespace gmem::agent;  // NOLINT: the whole file speaks the agent protocol
using agent_input::InputBuilder;
using agent_input::Setup;

constexpr uint8_t kTracking = 0;                                  // gfn_limit 640, tracks writes
constexpr uint8_t kNoTracking = agent_input::kPlatformNoTracking;  // gfn_limit 640, DIRTY says ALL
constexpr uint8_t kHugeRam = 3 << 1;                              // gfn_limit 2^40
constexpr uint8_t kEmpty = agent_input::kPlatformEmpty;            // no private page at the start
// The private pages of the kTracking platform at the start (fuzz/agent_fuzz_platform.h).
const std::vector<uint64_t> kInitialPrivate = {0, 1, 319, 512, 513, 600, 601, 639};

Status WriteFile(const std::string& dir, const std::string& name, ByteSpan bytes) {
  std::string path = dir + "/" + name;
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  out.close();
  if (!out) return Status(Code::kIo, "cannot write " + path);
  return Status::Ok();
}

Bytes Hello(Role role, Mode mode, ByteSpan share = {}) {
  HelloRequest q;
  q.role = role;
  q.mode = mode;
  q.session_id = agent_input::FuzzSession();
  q.peer_share.assign(share.begin(), share.end());
  return EncodeHelloRequest(q);
}

Bytes Export(std::vector<uint64_t> gfns) { return EncodeExportRequest({std::move(gfns)}); }

// IMPORT of blobs laid out back to back from offset 0 of the bounce buffer.
Bytes Import(std::vector<uint64_t> gfns) {
  ImportRequest q;
  for (size_t i = 0; i < gfns.size(); ++i) {
    q.entries.push_back({gfns[i], static_cast<uint32_t>(i * kBlobBytes), static_cast<uint32_t>(kBlobBytes)});
  }
  return EncodeImportRequest(q);
}

Bytes Dirty(uint64_t cursor, uint32_t max) { return EncodeDirtyRequest({cursor, max}); }
Bytes Abort() { return EncodeAbortRequest({}); }
Bytes FinishExport() { return EncodeFinishRequest({0}); }
Bytes FinishImport() { return EncodeFinishRequest({static_cast<uint32_t>(kBlobBytes)}); }

// A whole request page, for the raw op.
Bytes Page(uint32_t magic, uint16_t major, uint16_t minor, MessageType type, ByteSpan body) {
  Bytes page(kHeaderBytes + body.size());
  RequestHeader h;
  h.type = type;
  h.major = major;
  h.minor = minor;
  h.body_length = static_cast<uint32_t>(body.size());
  h.request_id = 77;
  Bytes full(kMailboxPageBytes);
  if (!EncodeRequest(h, body, full).ok()) std::abort();
  StoreLe<uint32_t>(full.data(), magic);
  page.assign(full.begin(), full.begin() + kHeaderBytes + body.size());
  return page;
}

struct Seed {
  std::string name;
  Bytes bytes;
};

Expected<std::vector<Seed>> Seeds() {
  GMEM_ASSIGN_OR_RETURN(PlatformKey key, PlatformKey::FromSecret(agent_input::PlatformSecret()));
  GMEM_ASSIGN_OR_RETURN(Bytes descriptor, agent_input::SealedDescriptor(key));
  std::vector<Seed> seeds;
  auto add = [&](std::string name, const InputBuilder& b) { seeds.push_back({std::move(name), b.bytes()}); };

  // HELLO in each role and mode, from an idle agent, then what the session allows.
  add("hello_export_transport", InputBuilder(Setup::kIdle, kTracking)
                                    .Request(MessageType::kHello, Hello(Role::kExport, Mode::kTransport))
                                    .Peer(0)
                                    .Request(MessageType::kExport, Export({600, 601})));
  add("hello_export_sealed", InputBuilder(Setup::kIdle, kTracking)
                                 .Request(MessageType::kHello, Hello(Role::kExport, Mode::kSealed))
                                 .Request(MessageType::kExport, Export({600, 5, 320, 639}))
                                 .Request(MessageType::kDirty, Dirty(0, 0))
                                 .Request(MessageType::kAbort, Abort()));
  add("hello_import_sealed", InputBuilder(Setup::kIdle, kTracking)
                                 .Request(MessageType::kHello, Hello(Role::kImport, Mode::kSealed, descriptor))
                                 .SealBlob(0, 600, 1, 1)
                                 .SealBlob(kBlobBytes, 60, 2, 2)
                                 .Request(MessageType::kImport, Import({600, 60})));
  add("hello_import_transport_wrong_mode",
      InputBuilder(Setup::kIdle, kTracking)
          .Request(MessageType::kHello, Hello(Role::kImport, Mode::kTransport, descriptor)));
  add("hello_unprovisioned", InputBuilder(Setup::kUnprovisioned, kTracking)
                                 .Request(MessageType::kHello, Hello(Role::kExport, Mode::kSealed)));

  // PEER: valid, and each way of breaking the importer's share.
  add("peer_valid", InputBuilder(Setup::kExportAwaitPeer, kTracking)
                        .Peer(0)
                        .Request(MessageType::kExport, Export({0, 1, 512, 600}))
                        .Request(MessageType::kDirty, Dirty(0, 2)));
  for (uint8_t tweak = 1; tweak < 6; ++tweak) {
    add("peer_broken_" + std::to_string(tweak), InputBuilder(Setup::kExportAwaitPeer, kTracking).Peer(tweak).Peer(0));
  }
  add("peer_wrong_role", InputBuilder(Setup::kExportAwaitPeer, kTracking)
                             .Request(MessageType::kPeer, EncodePeerRequest({descriptor})));

  // EXPORT and DIRTY in a ready export session.
  add("export_transport", InputBuilder(Setup::kExportTransport, kTracking)
                              .Request(MessageType::kExport, Export({0, 1, 319, 320, 511, 512, 513, 600, 601, 639, 640}))
                              .Request(MessageType::kDirty, Dirty(0, 0))
                              .Request(MessageType::kExport, Export({600, 600}))
                              .Request(MessageType::kDirty, Dirty(513, 1)));
  add("export_sealed_huge_ram", InputBuilder(Setup::kExportSealed, kHugeRam)
                                    .Request(MessageType::kExport,
                                             Export({(uint64_t{1} << 40) - 1, uint64_t{1} << 40, ~uint64_t{0}}))
                                    .Request(MessageType::kDirty, Dirty((uint64_t{1} << 40) - 5, 0)));
  add("dirty_all", InputBuilder(Setup::kExportSealed, kNoTracking).Request(MessageType::kDirty, Dirty(0, 0)));
  add("dirty_bad_state", InputBuilder(Setup::kImportSealed, kTracking).Request(MessageType::kDirty, Dirty(0, 1)));

  // IMPORT: accepted, then replayed, misaddressed, of another epoch, outside the bounce buffer.
  add("import_transport", InputBuilder(Setup::kImportTransport, kTracking)
                              .SealBlob(0, 600, 3, 0)
                              .SealBlob(kBlobBytes, 601, 4, 0)
                              .SealBlob(2 * kBlobBytes, 600, 5, 0)
                              .Request(MessageType::kImport, Import({600, 601, 600})));
  add("import_replay", InputBuilder(Setup::kImportSealed, kTracking)
                           .SealBlob(0, 601, 9, 3)
                           .Request(MessageType::kImport, Import({601}))
                           .Request(MessageType::kImport, Import({601})));
  add("import_wrong_gfn", InputBuilder(Setup::kImportSealed, kTracking)
                              .SealBlob(0, 600, 1, 0)
                              .Request(MessageType::kImport, Import({601})));
  add("import_wrong_epoch", InputBuilder(Setup::kImportSealed, kTracking)
                                .SealBlob(0, 600, 1, 0x80)
                                .Request(MessageType::kImport, Import({600})));
  ImportRequest outside;
  outside.entries.push_back({600, static_cast<uint32_t>(kBounceBytes - kBlobBytes + 1), static_cast<uint32_t>(kBlobBytes)});
  add("import_outside_bounce",
      InputBuilder(Setup::kImportSealed, kTracking).Request(MessageType::kImport, EncodeImportRequest(outside)));
  Bytes forged(kBlobBytes);
  EncodeBlobHeader({600, agent_input::kSealedEpoch, 1, kBlobAttrPrivate}, forged);
  add("import_forged_blob", InputBuilder(Setup::kImportSealed, kTracking)
                                .Bounce(0, forged)
                                .Request(MessageType::kImport, Import({600}))
                                .Request(MessageType::kImport, Import({600})));

  // FINISH of an export session: refused while pages are unexported or dirty, then the manifest;
  // afterwards only HELLO and ABORT.
  add("finish_export", InputBuilder(Setup::kExportTransport, kTracking)
                           .Request(MessageType::kFinish, FinishExport())
                           .Request(MessageType::kExport, Export(kInitialPrivate))
                           .Request(MessageType::kFinish, FinishExport())
                           .Request(MessageType::kExport, Export({600}))
                           .Request(MessageType::kDirty, Dirty(0, 0))
                           .Request(MessageType::kFinish, FinishExport())
                           .Request(MessageType::kHello, Hello(Role::kExport, Mode::kSealed))
                           .Request(MessageType::kFinish, FinishExport()));
  add("finish_export_untracked", InputBuilder(Setup::kExportSealed, kNoTracking)
                                     .Request(MessageType::kExport, Export({0, 1, 319, 512}))
                                     .Request(MessageType::kFinish, FinishExport())
                                     .Request(MessageType::kExport, Export({513, 600, 601, 639}))
                                     .Request(MessageType::kFinish, FinishExport()));
  add("finish_export_empty_huge_ram", InputBuilder(Setup::kExportSealed, kHugeRam | kEmpty)
                                          .Request(MessageType::kFinish, FinishImport())
                                          .Request(MessageType::kFinish, FinishExport()));
  add("finish_bad_state", InputBuilder(Setup::kExportAwaitPeer, kTracking)
                              .Request(MessageType::kFinish, FinishExport())
                              .RawPage(Page(kRequestMagic, 1, 0, MessageType::kFinish, FinishExport())));

  // FINISH of an import session: an intact manifest, and each way of breaking one.
  add("finish_import", InputBuilder(Setup::kImportSealed, kEmpty)
                           .SealBlob(0, 600, 1, 1)
                           .SealBlob(kBlobBytes, 601, 2, 2)
                           .Request(MessageType::kImport, Import({600, 601}))
                           .SealManifest(3, 0)
                           .Request(MessageType::kFinish, FinishImport())
                           .Request(MessageType::kImport, Import({600})));
  add("finish_import_transport", InputBuilder(Setup::kImportTransport, kEmpty)
                                     .SealManifest(1, 0)
                                     .Request(MessageType::kFinish, FinishExport())
                                     .Request(MessageType::kFinish, FinishImport()));
  for (uint8_t tweak = 1; tweak < 7; ++tweak) {
    add("finish_import_broken_" + std::to_string(tweak), InputBuilder(Setup::kImportSealed, kEmpty)
                                                             .SealBlob(0, 600, 1, 1)
                                                             .Request(MessageType::kImport, Import({600}))
                                                             .SealManifest(2, tweak)
                                                             .Request(MessageType::kFinish, FinishImport()));
  }
  add("finish_import_replayed_manifest", InputBuilder(Setup::kImportSealed, kEmpty)
                                             .SealBlob(0, 600, 5, 1)
                                             .Request(MessageType::kImport, Import({600}))
                                             .SealManifest(4, 0)
                                             .Request(MessageType::kFinish, FinishImport()));
  add("finish_import_withheld", InputBuilder(Setup::kImportSealed, kTracking)
                                    .SealBlob(0, 600, 1, 1)
                                    .Request(MessageType::kImport, Import({600}))
                                    .SealManifest(2, 0)
                                    .Request(MessageType::kFinish, FinishImport()));

  // ABORT, and pages the agent must refuse as a whole.
  add("abort", InputBuilder(Setup::kExportTransport, kTracking)
                   .Request(MessageType::kAbort, Abort())
                   .Request(MessageType::kExport, Export({600})));
  add("raw_pages", InputBuilder(Setup::kIdle, kTracking)
                       .RawPage(Page(kRequestMagic, 1, 0, MessageType::kAbort, Abort()))
                       .RawPage(Page(0x12345678, 1, 0, MessageType::kAbort, Abort()))
                       .RawPage(Page(kRequestMagic, 2, 0, MessageType::kHello, {}))
                       .RawPage(Page(kRequestMagic, 1, kVersionMinor + 1, MessageType::kDirty, Dirty(0, 0)))
                       .Request(static_cast<MessageType>(kMaxMessageType + 1), {}));

  // The decoders, directly.
  Bytes blob(kBlobBytes);
  EncodeBlobHeader({600, 3, 42, kBlobAttrPrivate}, blob);
  add("decode_share", InputBuilder(Setup::kIdle, kTracking).Decode(descriptor));
  Bytes manifest(kPageBytes);
  EncodeManifest({kManifestFlagUntracked, 8, {}}, manifest);
  add("decode_manifest", InputBuilder(Setup::kIdle, kTracking).Decode(manifest));
  add("decode_blob", InputBuilder(Setup::kIdle, kTracking).Decode(blob));
  add("decode_request_page",
      InputBuilder(Setup::kIdle, kTracking).Decode(Page(kRequestMagic, 1, 0, MessageType::kDirty, Dirty(5, 6))));
  add("decode_bodies",
      InputBuilder(Setup::kIdle, kTracking)
          .Decode(Hello(Role::kImport, Mode::kSealed, descriptor))
          .Decode(EncodeHelloResponse({kHelloFlagKeyReady, 3, 99, descriptor}))
          .Decode(EncodePeerResponse({kHelloFlagKeyReady, 3, 99}))
          .Decode(EncodeExportResponse({{{600, 0, static_cast<uint32_t>(kBlobBytes), AgentStatus::kOk}, {5, 0, 0, AgentStatus::kNotPrivate}}}))
          .Decode(Import({600, 601}))
          .Decode(EncodeImportResponse({2}))
          .Decode(EncodeDirtyResponse({2, kDirtyFlagMore, 0x2000}))
          .Decode(FinishImport())
          .Decode(EncodeFinishResponse({8, kManifestFlagUntracked, static_cast<uint32_t>(kBlobBytes)}))
          .Decode(EncodeErrorBody("entry 3 (gfn 4711): a replayed or reordered blob")));
  return seeds;
}

}  // namespace
}  // namespace gmem::fuzz

int main(int argc, char** argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s DIR\n  writes the seed corpus of agent_request_fuzz into DIR (which must exist)\n",
            argv[0]);
    return 2;
  }
  auto seeds = gmem::fuzz::Seeds();
  if (!seeds.ok()) {
    fprintf(stderr, "make_agent_fuzz_corpus: %s\n", seeds.status().ToString().c_str());
    return 1;
  }
  for (const auto& seed : *seeds) {
    gmem::Status st = gmem::fuzz::WriteFile(argv[1], seed.name, seed.bytes);
    if (!st.ok()) {
      fprintf(stderr, "make_agent_fuzz_corpus: %s\n", st.ToString().c_str());
      return 1;
    }
  }
  return 0;
}
