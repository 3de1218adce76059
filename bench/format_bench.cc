// format_bench: how fast the image format seals and compresses guest pages, and how that compares
// with the raw limits of this machine measured in the same run (see bench/README.md).
//
// Every case handles 1 MiB batches of 4 KiB pages (256 per batch) taken in turn from a 32 MiB
// pool of one page kind, so the data is not the same 1 MiB every time:
//   zero    all-zero pages (sent as ZERO runs, no data)
//   text    ASCII "log/config" text from a phrase table    (like gen_image.py class 1)
//   struct  32-byte binary records with counters           (like gen_image.py class 2)
//   random  incompressible bytes                           (like gen_image.py class 3)
//   mix     35% zero, 25% text, 20% struct, 20% random, in shuffled runs like the anchor image
//
// Cases (throughput counts raw guest bytes, zero pages included; wire_per_raw = bytes out / in):
//   write_zstd_gcm/K  ImageWriter::WritePages, zstd level 1 + AES-256-GCM, into a counting sink
//   write_raw_gcm/K   the same with compression NONE
//   read_zstd_gcm/K   ImageReader over an image of the whole pool (decrypt + decompress)
//   read_raw_gcm/K    the same for the compression NONE image
//   build_batch/K     what a caller does first: find the zero pages and build the runs
//   anchor_memcpy/K   memcpy of the 1 MiB batch
//   anchor_zstd1/K    ZSTD_compressCCtx level 1 of the 1 MiB batch (zero pages included)
//   anchor_unzstd/K   ZSTD_decompressDCtx of that
//   anchor_gcm        EVP AES-256-GCM of 1 MiB in place (independent of the data)

#include <benchmark/benchmark.h>
#include <openssl/evp.h>
#include <zstd.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "base/io.h"
#include "format/image_reader.h"
#include "format/image_writer.h"
#include "format/keys.h"
#include "format/stream_keys.h"

namespace gmem::bench {
namespace {

using format::Compression;
using format::PageBatchInput;
using format::RunKind;

constexpr size_t kPageSize = 4096;
constexpr size_t kBatchPages = 256;
constexpr size_t kBatchBytes = kBatchPages * kPageSize;  // 1 MiB
constexpr size_t kPoolBatches = 32;
constexpr size_t kPoolPages = kPoolBatches * kBatchPages;
constexpr uint32_t kRegionId = 1;

enum class Kind { kZero, kText, kStruct, kRandom, kMix };
constexpr Kind kKinds[] = {Kind::kZero, Kind::kText, Kind::kStruct, Kind::kRandom, Kind::kMix};

const char* KindName(Kind kind) {
  switch (kind) {
    case Kind::kZero: return "zero";
    case Kind::kText: return "text";
    case Kind::kStruct: return "struct";
    case Kind::kRandom: return "random";
    case Kind::kMix: return "mix";
  }
  return "?";
}

// ---- Page contents ----

// splitmix64: fast, deterministic, good enough for synthetic page contents.
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t Next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  uint8_t Byte() { return static_cast<uint8_t>(Next() >> 56); }
  void Fill(std::byte* p, size_t n) {
    for (size_t i = 0; i < n; i += 8) {
      uint64_t v = Next();
      std::memcpy(p + i, &v, std::min<size_t>(8, n - i));
    }
  }

 private:
  uint64_t state_;
};

// Text like gen_image.py's class 1: 8192 phrases built from 1024 pseudo-words, numbers,
// key=value, paths and separators; a page is 256 random phrases cut at 4 KiB.
class TextPages {
 public:
  explicit TextPages(uint64_t seed) : rng_(seed) {
    static constexpr char kLetters[] = "etaoinshrdlcumwfgypbvkjxqz";
    std::vector<std::string> words(1024);
    for (std::string& w : words) {
      size_t length = 2 + rng_.Byte() % 9;
      for (size_t k = 0; k < length; ++k) w += kLetters[std::min(rng_.Byte() % 26, rng_.Byte() % 26)];
    }
    static const char* kSeps[] = {" ", " ", " ", ", ", "=", ": ", "/", "_", ".", "\n", "; ", "\t"};
    static constexpr int kNumMod[] = {10, 100, 1000, 10000};
    phrases_.resize(8192);
    for (std::string& ph : phrases_) {
      uint64_t t = rng_.Next();
      const std::string& w1 = words[(t >> 8) % 1024];
      const std::string& w2 = words[(t >> 24) % 1024];
      uint8_t t7 = static_cast<uint8_t>(t >> 56);
      std::string num = std::to_string((t >> 40) % 65536 % kNumMod[t7 % 4]);
      switch (t % 8) {
        case 0: ph = w1 + "=" + num + "\n"; break;
        case 1: ph = "/usr/lib/" + w1 + "/" + w2 + ".so." + num + " "; break;
        case 2: ph = w1 + "_" + w2 + ": " + num + ", "; break;
        case 3: ph = "[" + num + "] " + w1 + " " + w2 + "\n"; break;
        default: ph = w1 + kSeps[t7 % 12] + w2 + " "; break;
      }
      while (ph.size() < 16) ph += " " + w2;  // 256 phrases always fill a page
    }
  }

  void Page(std::byte* out) {
    size_t at = 0;
    while (at < kPageSize) {
      const std::string& ph = phrases_[rng_.Next() % phrases_.size()];
      size_t n = std::min(ph.size(), kPageSize - at);
      std::memcpy(out + at, ph.data(), n);
      at += n;
    }
  }

 private:
  Rng rng_;
  std::vector<std::string> phrases_;
};

// Records like gen_image.py's class 2: 128 x 32 bytes per page: u32 sequential id, u32 4-bit
// flags, u64 user-space pointer 0x00007fxx_xxxxxxx0, u64 increasing ns timestamp with random
// low bytes, f32-like value, u32 small count.
class StructPages {
 public:
  explicit StructPages(uint64_t seed) : rng_(seed) {}

  void Page(std::byte* out) {
    std::memset(out, 0, kPageSize);
    for (size_t i = 0; i < kPageSize / 32; ++i) {
      std::byte* r = out + 32 * i;
      auto b = [](uint64_t v) { return static_cast<std::byte>(v & 0xff); };
      StoreLe<uint32_t>(r, static_cast<uint32_t>(record_ + i));
      r[4] = b(rng_.Byte() & 0x0f);
      r[8] = b(rng_.Byte() & 0xf0);
      r[9] = b(rng_.Byte());
      r[10] = b(rng_.Byte());
      r[11] = b((rng_.Byte() & 0x03) | 0x50);
      r[12] = b(0x55 ^ ((record_ >> 12) & 0xff));
      r[13] = b(0x7f);
      r[16] = b(rng_.Byte());
      r[17] = b(rng_.Byte());
      r[18] = b((timestamp_ns_ >> 16) + i);
      for (int k = 19; k < 24; ++k) r[k] = b(timestamp_ns_ >> (8 * (k - 16)));
      r[24] = b(rng_.Byte());
      r[25] = b(rng_.Byte());
      r[26] = b(rng_.Byte() & 0x7f);
      r[27] = b(0x42);
      r[28] = b(rng_.Byte() & 0x3f);
    }
    record_ += kPageSize / 32;
    timestamp_ns_ += (kPageSize / 32) << 16;
  }

 private:
  Rng rng_;
  uint64_t record_ = 0;
  uint64_t timestamp_ns_ = 1'700'000'000'000'000'000ull;
};

// The class of each page of the mix: exact shares, runs of 1..128 zero, 1..32 text or struct and
// 1..64 random pages, all runs shuffled together (as gen_image.py lays out the anchor image).
std::vector<Kind> MixLayout(size_t npages, Rng& rng) {
  const Kind kinds[] = {Kind::kZero, Kind::kText, Kind::kStruct, Kind::kRandom};
  const double shares[] = {0.35, 0.25, 0.20};
  const uint64_t max_run[] = {128, 32, 32, 64};
  std::vector<std::pair<Kind, size_t>> runs;
  size_t assigned = 0;
  for (size_t c = 0; c < 4; ++c) {
    size_t count = c < 3 ? static_cast<size_t>(shares[c] * npages + 0.5) : npages - assigned;
    assigned += count;
    for (size_t left = count; left > 0;) {
      size_t length = std::min<size_t>(left, 1 + rng.Next() % max_run[c]);
      runs.emplace_back(kinds[c], length);
      left -= length;
    }
  }
  for (size_t i = runs.size() - 1; i > 0; --i) std::swap(runs[i], runs[rng.Next() % (i + 1)]);
  std::vector<Kind> layout;
  for (const auto& [kind, length] : runs) layout.insert(layout.end(), length, kind);
  return layout;
}

bool IsZeroPage(const std::byte* page) {
  uint64_t acc = 0;
  for (size_t i = 0; i < kPageSize; i += 8) {
    uint64_t v;
    std::memcpy(&v, page + i, 8);
    acc |= v;
  }
  return acc == 0;
}

// Zero pages become ZERO runs, the others DATA runs with one span each; runs are merged.
void BuildBatch(ByteSpan pool, size_t batch, PageBatchInput& out) {
  out.region_id = kRegionId;
  out.generation = 1;
  out.runs.clear();
  out.data.clear();
  for (size_t i = 0; i < kBatchPages; ++i) {
    uint64_t page = batch * kBatchPages + i;
    ByteSpan bytes = pool.subspan(page * kPageSize, kPageSize);
    RunKind kind = IsZeroPage(bytes.data()) ? RunKind::kZero : RunKind::kData;
    if (!out.runs.empty() && out.runs.back().kind == kind) {
      ++out.runs.back().npages;
    } else {
      out.runs.push_back({page, 1, kind});
    }
    if (kind == RunKind::kData) out.data.push_back(bytes);
  }
}

// One kind's pages and their batches, built once per process.
struct Pool {
  Bytes bytes;
  std::vector<PageBatchInput> batches;
};

std::unique_ptr<Pool> MakePool(Kind kind) {
  auto pool = std::make_unique<Pool>();
  pool->bytes.resize(kPoolPages * kPageSize);
  Rng rng(0x5eed0000 + static_cast<uint64_t>(kind));
  TextPages text(1);
  StructPages records(2);
  std::vector<Kind> layout = kind == Kind::kMix ? MixLayout(kPoolPages, rng) : std::vector<Kind>(kPoolPages, kind);
  for (size_t p = 0; p < kPoolPages; ++p) {
    std::byte* page = pool->bytes.data() + p * kPageSize;
    switch (layout[p]) {
      case Kind::kZero: break;
      case Kind::kText: text.Page(page); break;
      case Kind::kStruct: records.Page(page); break;
      case Kind::kRandom: rng.Fill(page, kPageSize); break;
      case Kind::kMix: break;
    }
  }
  pool->batches.resize(kPoolBatches);
  for (size_t b = 0; b < kPoolBatches; ++b) BuildBatch(pool->bytes, b, pool->batches[b]);
  return pool;
}

const Pool& GetPool(Kind kind) {
  static std::array<std::unique_ptr<Pool>, std::size(kKinds)> pools;
  std::unique_ptr<Pool>& pool = pools[static_cast<size_t>(kind)];
  if (!pool) pool = MakePool(kind);
  return *pool;
}

ByteSpan Batch(const Pool& pool, size_t batch) {
  return ByteSpan(pool.bytes).subspan(batch * kBatchBytes, kBatchBytes);
}

// ---- Writer and reader ----

// Counts what it is given and drops it.
class NullSink final : public ByteSink {
 public:
  Status Write(ByteSpan data) override {
    bytes_ += data.size();
    return Status::Ok();
  }
  uint64_t bytes() const { return bytes_; }

 private:
  uint64_t bytes_ = 0;
};

format::KeySource BenchKeySource() {
  SecretBytes key(format::kKeySize);
  for (size_t i = 0; i < key.size(); ++i) key.data()[i] = static_cast<std::byte>(0xb0 + i);
  return format::KeySource::FromKey(std::move(key));
}

format::LayoutRecord PoolLayout() {
  format::LayoutRecord layout;
  layout.regions.push_back(format::Region{kRegionId, kPageSize, 0, kPoolPages * kPageSize, 0, 0});
  return layout;
}

// A writer that has written its header and LAYOUT into `sink`.
Expected<format::ImageWriter> OpenWriter(ByteSink& sink, Compression compression) {
  format::StreamParams params;
  params.compression = compression;
  GMEM_ASSIGN_OR_RETURN(format::StreamKeys keys, format::CreateStream(params, BenchKeySource()));
  format::WriterOptions options;
  options.zstd_level = 1;
  auto shared_keys = std::make_shared<const format::StreamKeys>(std::move(keys));
  GMEM_ASSIGN_OR_RETURN(format::ImageWriter writer, format::ImageWriter::Create(sink, shared_keys, options));
  GMEM_RETURN_IF_ERROR(writer.Begin());
  GMEM_RETURN_IF_ERROR(writer.WriteLayout(PoolLayout()));
  return writer;
}

void BM_Write(benchmark::State& state, Kind kind, Compression compression) {
  const Pool& pool = GetPool(kind);
  NullSink sink;
  Expected<format::ImageWriter> writer = OpenWriter(sink, compression);
  if (!writer.ok()) return state.SkipWithError(writer.status().ToString().c_str());
  uint64_t before = sink.bytes();
  size_t batch = 0;
  for (auto _ : state) {
    Status st = writer->WritePages(pool.batches[batch]);
    if (!st.ok()) return state.SkipWithError(st.ToString().c_str());
    batch = (batch + 1) % pool.batches.size();
  }
  double raw = static_cast<double>(state.iterations()) * kBatchBytes;
  state.SetBytesProcessed(static_cast<int64_t>(raw));
  state.counters["wire_per_raw"] = static_cast<double>(sink.bytes() - before) / raw;
}

// The whole pool as one finished image, written once per process and compression.
const Bytes& PoolImage(Kind kind, Compression compression) {
  static std::array<std::array<std::unique_ptr<Bytes>, 2>, std::size(kKinds)> images;
  std::unique_ptr<Bytes>& image = images[static_cast<size_t>(kind)][compression == Compression::kZstd];
  if (image) return *image;
  image = std::make_unique<Bytes>();
  MemorySink sink;
  Expected<format::ImageWriter> writer = OpenWriter(sink, compression);
  Status st = writer.ok() ? Status::Ok() : writer.status();
  for (size_t b = 0; st.ok() && b < kPoolBatches; ++b) st = writer->WritePages(GetPool(kind).batches[b]);
  if (st.ok()) st = writer->Finish().status();
  if (st.ok()) *image = std::move(sink.bytes());  // stays empty on failure; the read case says so
  return *image;
}

void BM_Read(benchmark::State& state, Kind kind, Compression compression) {
  const Bytes& image = PoolImage(kind, compression);
  if (image.empty()) return state.SkipWithError("writing the image failed");
  format::KeySource key = BenchKeySource();
  uint64_t data_bytes = 0;
  for (auto _ : state) {
    MemorySource source(image);
    Expected<format::ImageReader> reader = format::ImageReader::Open(source, key, {});
    if (!reader.ok()) return state.SkipWithError(reader.status().ToString().c_str());
    while (!reader->finished()) {
      Expected<const format::Record*> record = reader->Next();
      if (!record.ok()) return state.SkipWithError(record.status().ToString().c_str());
      if (const auto* pages = std::get_if<format::PagesRecord>(&(*record)->body)) data_bytes += pages->data.size();
    }
  }
  benchmark::DoNotOptimize(data_bytes);
  double raw = static_cast<double>(state.iterations()) * kPoolPages * kPageSize;
  state.SetBytesProcessed(static_cast<int64_t>(raw));
  state.counters["wire_per_raw"] = static_cast<double>(image.size()) / (kPoolPages * kPageSize);
}

void BM_BuildBatch(benchmark::State& state, Kind kind) {
  const Pool& pool = GetPool(kind);
  PageBatchInput batch;
  size_t b = 0;
  for (auto _ : state) {
    BuildBatch(pool.bytes, b, batch);
    benchmark::DoNotOptimize(batch.runs.data());
    b = (b + 1) % kPoolBatches;
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kBatchBytes));
}

// ---- Anchors: the raw limits ----

void BM_Memcpy(benchmark::State& state, Kind kind) {
  const Pool& pool = GetPool(kind);
  Bytes dst(kBatchBytes);
  size_t b = 0;
  for (auto _ : state) {
    std::memcpy(dst.data(), Batch(pool, b).data(), kBatchBytes);
    benchmark::ClobberMemory();
    b = (b + 1) % kPoolBatches;
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kBatchBytes));
}

struct ZstdContexts {
  ZstdContexts() : cctx(ZSTD_createCCtx()), dctx(ZSTD_createDCtx()) {}
  ~ZstdContexts() {
    ZSTD_freeCCtx(cctx);
    ZSTD_freeDCtx(dctx);
  }
  ZstdContexts(const ZstdContexts&) = delete;
  ZstdContexts& operator=(const ZstdContexts&) = delete;
  ZSTD_CCtx* cctx;
  ZSTD_DCtx* dctx;
};

void BM_ZstdCompress(benchmark::State& state, Kind kind) {
  const Pool& pool = GetPool(kind);
  ZstdContexts zstd;
  Bytes dst(ZSTD_compressBound(kBatchBytes));
  uint64_t out = 0;
  size_t b = 0;
  for (auto _ : state) {
    ByteSpan src = Batch(pool, b);
    size_t n = ZSTD_compressCCtx(zstd.cctx, dst.data(), dst.size(), src.data(), src.size(), 1);
    if (ZSTD_isError(n)) return state.SkipWithError(ZSTD_getErrorName(n));
    out += n;
    b = (b + 1) % kPoolBatches;
  }
  double raw = static_cast<double>(state.iterations()) * kBatchBytes;
  state.SetBytesProcessed(static_cast<int64_t>(raw));
  state.counters["wire_per_raw"] = static_cast<double>(out) / raw;
}

void BM_ZstdDecompress(benchmark::State& state, Kind kind) {
  const Pool& pool = GetPool(kind);
  ZstdContexts zstd;
  std::vector<Bytes> frames(kPoolBatches);
  for (size_t b = 0; b < kPoolBatches; ++b) {
    frames[b].resize(ZSTD_compressBound(kBatchBytes));
    ByteSpan src = Batch(pool, b);
    size_t n = ZSTD_compressCCtx(zstd.cctx, frames[b].data(), frames[b].size(), src.data(), src.size(), 1);
    if (ZSTD_isError(n)) return state.SkipWithError(ZSTD_getErrorName(n));
    frames[b].resize(n);
  }
  Bytes dst(kBatchBytes);
  size_t b = 0;
  for (auto _ : state) {
    size_t n = ZSTD_decompressDCtx(zstd.dctx, dst.data(), dst.size(), frames[b].data(), frames[b].size());
    if (ZSTD_isError(n) || n != kBatchBytes) return state.SkipWithError("zstd decompression failed");
    b = (b + 1) % kPoolBatches;
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kBatchBytes));
}

void BM_AesGcm(benchmark::State& state) {
  std::unique_ptr<EVP_CIPHER_CTX, decltype(&EVP_CIPHER_CTX_free)> ctx(EVP_CIPHER_CTX_new(), EVP_CIPHER_CTX_free);
  std::array<unsigned char, 32> key{};
  std::array<unsigned char, 12> nonce{};
  std::array<unsigned char, 16> tag{};
  std::vector<unsigned char> data(kBatchBytes, 0x5a);
  if (!ctx || EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, key.data(), nullptr) != 1) {
    return state.SkipWithError("EVP init failed");
  }
  uint64_t counter = 0;
  for (auto _ : state) {
    // A fresh nonce per message, as the sealer uses one per record.
    std::memcpy(nonce.data(), &++counter, sizeof counter);
    int len = 0;
    bool ok = EVP_EncryptInit_ex(ctx.get(), nullptr, nullptr, nullptr, nonce.data()) == 1 &&
              EVP_EncryptUpdate(ctx.get(), data.data(), &len, data.data(), static_cast<int>(data.size())) == 1 &&
              EVP_EncryptFinal_ex(ctx.get(), data.data() + len, &len) == 1 &&
              EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, static_cast<int>(tag.size()), tag.data()) == 1;
    if (!ok) return state.SkipWithError("EVP encryption failed");
    benchmark::DoNotOptimize(tag.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kBatchBytes));
}

// ---- Registration: grouped by page kind, anchors first ----

// Rates use CPU time (Google Benchmark's default): every case is single-threaded and never
// waits, so on a quiet machine CPU time equals wall time, and on a busy one (this project's
// 2-vCPU build box) it is not inflated by other processes. The console shows both times.
void Configure(benchmark::internal::Benchmark* b) { b->Unit(benchmark::kMicrosecond); }

int RegisterAll() {
  Configure(benchmark::RegisterBenchmark("anchor_gcm", BM_AesGcm));
  for (Kind kind : kKinds) {
    auto reg = [kind](const char* what, auto fn, auto... args) {
      std::string name = std::string(what) + "/" + KindName(kind);
      Configure(benchmark::RegisterBenchmark(name.c_str(), fn, args...));
    };
    reg("anchor_memcpy", BM_Memcpy, kind);
    reg("anchor_zstd1", BM_ZstdCompress, kind);
    reg("anchor_unzstd", BM_ZstdDecompress, kind);
    reg("build_batch", BM_BuildBatch, kind);
    reg("write_zstd_gcm", BM_Write, kind, Compression::kZstd);
    reg("write_raw_gcm", BM_Write, kind, Compression::kNone);
    reg("read_zstd_gcm", BM_Read, kind, Compression::kZstd);
    reg("read_raw_gcm", BM_Read, kind, Compression::kNone);
  }
  return 0;
}

[[maybe_unused]] const int kRegistered = RegisterAll();

}  // namespace
}  // namespace gmem::bench
