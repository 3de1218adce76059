// The control protocol's parser and reply formats: every malformed request gets an error reply
// that names the problem (and the id, when it could be read).

#include "vmm/control_protocol.h"

#include <nlohmann/json.hpp>

#include "tests/testutil/testutil.h"
#include "vmm/base64.h"

namespace gmem::vmm {
namespace {

using nlohmann::json;
using ::gmem::testing::StatusIs;

Expected<ControlRequest> Parse(std::string_view line, std::optional<int64_t>* id = nullptr) {
  std::optional<int64_t> ignored;
  return ParseControlRequest(line, id != nullptr ? id : &ignored);
}

TEST(ControlProtocolTest, ParsesSimpleCommands) {
  const std::pair<const char*, ControlCommand> cases[] = {
      {"query", ControlCommand::kQuery},        {"pause", ControlCommand::kPause},
      {"resume", ControlCommand::kResume},      {"get-memfds", ControlCommand::kGetMemfds},
      {"get-attributes", ControlCommand::kGetAttributes}, {"dirty-log", ControlCommand::kDirtyLog},
      {"get-state", ControlCommand::kGetState}, {"digest", ControlCommand::kDigest},
      {"guest-write-log", ControlCommand::kGuestWriteLog}, {"quit", ControlCommand::kQuit}};
  for (const auto& [name, command] : cases) {
    auto req = Parse(json{{"id", 7}, {"cmd", name}}.dump());
    ASSERT_OK(req);
    EXPECT_EQ(req->id, 7);
    EXPECT_EQ(req->command, command);
    EXPECT_EQ(ControlCommandName(command), name);
  }
}

TEST(ControlProtocolTest, MalformedJsonGetsAnErrorWithoutId) {
  std::optional<int64_t> id;
  EXPECT_THAT(Parse("{\"id\":1,\"cmd\":", &id), StatusIs(Code::kInvalidArgument, "malformed JSON"));
  EXPECT_FALSE(id.has_value());
  json reply = json::parse(ErrorReply(id, Parse("{", &id).status()));
  EXPECT_TRUE(reply["id"].is_null());
  EXPECT_FALSE(reply["ok"].get<bool>());
  EXPECT_THAT(reply["error"].get<std::string>(), ::testing::HasSubstr("malformed JSON"));
}

TEST(ControlProtocolTest, RejectsBadEnvelopes) {
  std::optional<int64_t> id;
  EXPECT_THAT(Parse("[1,2]"), StatusIs(Code::kInvalidArgument, "must be a JSON object"));
  EXPECT_THAT(Parse("{\"cmd\":\"query\"}"), StatusIs(Code::kInvalidArgument, "missing 'id'"));
  EXPECT_THAT(Parse("{\"id\":\"1\",\"cmd\":\"query\"}"), StatusIs(Code::kInvalidArgument, "'id' must be an integer"));
  EXPECT_THAT(Parse("{\"id\":1.5,\"cmd\":\"query\"}"), StatusIs(Code::kInvalidArgument, "'id' must be an integer"));
  EXPECT_THAT(Parse("{\"id\":3}", &id), StatusIs(Code::kInvalidArgument, "missing 'cmd'"));
  EXPECT_EQ(id, 3);
  EXPECT_THAT(Parse("{\"id\":4,\"cmd\":7}"), StatusIs(Code::kInvalidArgument, "missing 'cmd'"));
  EXPECT_THAT(Parse("{\"id\":5,\"cmd\":\"reboot\"}", &id), StatusIs(Code::kInvalidArgument, "unknown command 'reboot'"));
  EXPECT_EQ(id, 5);
}

TEST(ControlProtocolTest, SetStateNeedsBase64State) {
  EXPECT_THAT(Parse("{\"id\":1,\"cmd\":\"set-state\"}"), StatusIs(Code::kInvalidArgument, "missing 'state'"));
  EXPECT_THAT(Parse("{\"id\":1,\"cmd\":\"set-state\",\"state\":5}"), StatusIs(Code::kInvalidArgument, "missing 'state'"));
  EXPECT_THAT(Parse("{\"id\":1,\"cmd\":\"set-state\",\"state\":\"!!!!\"}"), StatusIs(Code::kInvalidArgument, "base64"));
  auto req = Parse(json{{"id", 1}, {"cmd", "set-state"}, {"state", Base64Encode(AsBytes("abc"))}}.dump());
  ASSERT_OK(req);
  EXPECT_EQ(req->state, Bytes(AsBytes("abc").begin(), AsBytes("abc").end()));
}

TEST(ControlProtocolTest, SetAttributesParsesRuns) {
  json good = {{"id", 2}, {"cmd", "set-attributes"},
               {"regions", {{{"id", 0}, {"npages", 10}, {"runs", {{0, 4, "shared"}, {4, 6, "private"}}}}}}};
  auto req = Parse(good.dump());
  ASSERT_OK(req);
  ASSERT_EQ(req->attributes.size(), 1u);
  EXPECT_EQ(req->attributes[0].map.CountPrivate(), 6u);
  json reply = json::parse(AttributesReply(2, req->attributes));
  EXPECT_EQ(reply["regions"][0]["runs"], good["regions"][0]["runs"]);

  EXPECT_THAT(Parse("{\"id\":1,\"cmd\":\"set-attributes\"}"), StatusIs(Code::kInvalidArgument, "missing 'regions'"));
  json gap = good;
  gap["regions"][0]["runs"] = {{0, 4, "shared"}};
  EXPECT_FALSE(Parse(gap.dump()).ok());
  json bad_attr = good;
  bad_attr["regions"][0]["runs"][1][2] = "secret";
  EXPECT_THAT(Parse(bad_attr.dump()), StatusIs(Code::kInvalidArgument, "unknown attribute 'secret'"));
  json bad_run = good;
  bad_run["regions"][0]["runs"][0] = {0, 4};
  EXPECT_THAT(Parse(bad_run.dump()), StatusIs(Code::kInvalidArgument, "each run must be"));
  json no_id = good;
  no_id["regions"][0].erase("id");
  EXPECT_THAT(Parse(no_id.dump()), StatusIs(Code::kInvalidArgument, "missing 'id'"));
}

TEST(ControlProtocolTest, PrepareIncomingParsesLayoutAndSlot) {
  json region = {{"id", 0}, {"gpa", 0}, {"size", 16 << 20}, {"gmem_offset", 0}, {"page_size", 4096}, {"flags", 3}};
  json req_json = {{"id", 9}, {"cmd", "prepare-incoming"}, {"layout", {{"regions", {region}}}}, {"slot", "hva"}};
  auto req = Parse(req_json.dump());
  ASSERT_OK(req);
  ASSERT_EQ(req->layout.regions().size(), 1u);
  EXPECT_EQ(req->layout.regions()[0].size_bytes, 16u << 20);
  EXPECT_EQ(req->slot, SlotMode::kHva);
  json reply = json::parse(MemfdsReply(9, req->layout));
  EXPECT_EQ(reply["layout"]["regions"][0], region);
  EXPECT_EQ(reply["fds"], 1);

  EXPECT_THAT(Parse("{\"id\":1,\"cmd\":\"prepare-incoming\"}"), StatusIs(Code::kInvalidArgument, "missing 'layout'"));
  json bad_slot = req_json;
  bad_slot["slot"] = "mmio";
  EXPECT_THAT(Parse(bad_slot.dump()), StatusIs(Code::kInvalidArgument, "unknown slot mode"));
  json missing = req_json;
  missing["layout"]["regions"][0].erase("size");
  EXPECT_THAT(Parse(missing.dump()), StatusIs(Code::kInvalidArgument, "missing 'size'"));
  json negative = req_json;
  negative["layout"]["regions"][0]["gpa"] = -4096;
  EXPECT_THAT(Parse(negative.dump()), StatusIs(Code::kInvalidArgument, "non-negative integer"));
  json overlap = req_json;
  overlap["layout"]["regions"].push_back(region);
  EXPECT_FALSE(Parse(overlap.dump()).ok());
}

TEST(ControlProtocolTest, RepliesAreOneJsonLine) {
  for (const std::string& line : {OkReply(1), DigestReply(2, 0xabc, 0x123), StateReply(3, AsBytes("xyz")),
                                  ErrorReply(4, InvalidArgument("bad\nthing \xff")), GuestWriteLogReply(5, {{1, 2}})}) {
    ASSERT_FALSE(line.empty());
    EXPECT_EQ(line.back(), '\n');
    EXPECT_EQ(line.find('\n'), line.size() - 1) << line;
    json j = json::parse(line);
    EXPECT_TRUE(j.contains("id"));
    EXPECT_TRUE(j.contains("ok"));
  }
  json digest = json::parse(DigestReply(2, 0xabc, 0x123));
  EXPECT_EQ(digest["digest"], "0000000000000abc");
  EXPECT_EQ(digest["checksum"], "0000000000000123");
  json err = json::parse(ErrorReply(4, Status(Code::kKvm, "KVM_RUN failed", 14)));
  EXPECT_EQ(err["code"], "kvm");
  EXPECT_THAT(err["error"].get<std::string>(), ::testing::HasSubstr("KVM_RUN failed"));
}

TEST(ControlProtocolTest, MigrationProgressParsesAndChecksItsFields) {
  json good = {{"id", 3},
               {"cmd", "migration-progress"},
               {"progress",
                {{"state", "active"}, {"role", "send"}, {"phase", "precopy"}, {"pass", 2}, {"bytes_sent", 4096},
                 {"bytes_remaining", 8192}, {"dirty_pages", 5}, {"rate_bytes_per_second", 100},
                 {"expected_downtime_ms", 12}}}};
  auto req = Parse(good.dump());
  ASSERT_OK(req);
  EXPECT_EQ(req->command, ControlCommand::kMigrationProgress);
  EXPECT_EQ(req->progress.state, MigrationState::kActive);
  EXPECT_EQ(req->progress.phase, "precopy");
  EXPECT_EQ(req->progress.pass, 2u);
  EXPECT_EQ(req->progress.bytes_remaining, 8192u);
  EXPECT_EQ(req->progress.expected_downtime_ms, 12u);
  EXPECT_THAT(Parse(R"({"id":1,"cmd":"migration-progress"})"),
              StatusIs(Code::kInvalidArgument, "migration-progress: missing 'progress'"));
  EXPECT_THAT(Parse(R"({"id":1,"cmd":"migration-progress","progress":{"pass":1}})"),
              StatusIs(Code::kInvalidArgument, "missing 'state'"));
  EXPECT_THAT(Parse(R"({"id":1,"cmd":"migration-progress","progress":{"state":"none"}})"),
              StatusIs(Code::kInvalidArgument, "'state' must be"));
  EXPECT_THAT(Parse(R"({"id":1,"cmd":"migration-progress","progress":{"state":"bogus"}})"),
              StatusIs(Code::kInvalidArgument, "'state' must be"));
  EXPECT_THAT(Parse(R"({"id":1,"cmd":"migration-progress","progress":{"state":"failed"}})"),
              StatusIs(Code::kInvalidArgument, "needs its 'error'"));
  EXPECT_THAT(Parse(R"({"id":1,"cmd":"migration-progress","progress":{"state":"active","pass":-1}})"),
              StatusIs(Code::kInvalidArgument, "'pass' must be a non-negative integer"));
  EXPECT_THAT(Parse(json{{"id", 1}, {"cmd", "migration-progress"},
                         {"progress", {{"state", "failed"}, {"error", std::string(5000, 'x')}}}}
                        .dump()),
              StatusIs(Code::kInvalidArgument, "'error' must be a string of at most 4096 bytes"));
}

TEST(ControlProtocolTest, QueryMigrationReportsNoneOrTheLastReportWithItsAge) {
  auto none = json::parse(QueryMigrationReply(4, std::nullopt));
  EXPECT_EQ(none["state"], "none");
  EXPECT_FALSE(none.contains("age_ms"));
  MigrationProgressBoard board;
  MigrationProgress p;
  p.state = MigrationState::kFailed;
  p.role = "send";
  p.error = "send to 'x': cancelled";
  board.Set(p);
  auto failed = json::parse(QueryMigrationReply(5, board.Get()));
  EXPECT_EQ(failed["id"], 5);
  EXPECT_EQ(failed["state"], "failed");
  EXPECT_EQ(failed["error"], "send to 'x': cancelled");
  EXPECT_TRUE(failed["age_ms"].is_number_unsigned());
  p.state = MigrationState::kActive;
  board.Set(p);
  auto active = json::parse(QueryMigrationReply(6, board.Get()));
  EXPECT_EQ(active["state"], "active");
  EXPECT_FALSE(active.contains("error"));
}

}  // namespace
}  // namespace gmem::vmm
