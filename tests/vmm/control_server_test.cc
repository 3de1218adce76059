// ControlServer over a real Unix socket with a fake handler: lines in, replies and fds out,
// several clients at once.

#include "vmm/control_server.h"

#include <fcntl.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <thread>

#include "tests/testutil/testutil.h"
#include "tests/vmm/control_client.h"

namespace gmem::vmm {
namespace {

using nlohmann::json;
using testing::ControlClient;

ControlReply Echo(std::string_view line) {
  json req = json::parse(line, nullptr, false);
  ControlReply reply;
  if (req.is_discarded()) {
    reply.line = "{\"id\":null,\"ok\":false,\"error\":\"malformed\"}\n";
    return reply;
  }
  json out = {{"id", req["id"]}, {"ok", true}, {"echo", req.value("cmd", "")}};
  if (req.value("cmd", "") == "fds") {
    int p[2];
    if (pipe2(p, O_CLOEXEC) == 0) {
      reply.fds.emplace_back(p[0]);
      reply.fds.emplace_back(p[1]);
    }
    out["fds"] = 2;
  }
  reply.line = out.dump() + "\n";
  return reply;
}

TEST(ControlServerTest, AnswersLinesAndPassesFds) {
  ::gmem::testing::TempDir dir;
  auto server = ControlServer::Listen(dir.File("ctl"), Echo);
  ASSERT_OK(server);
  (*server)->Start();
  auto client = ControlClient::Connect(dir.File("ctl"));
  ASSERT_OK(client);
  auto r = client->Call({{"cmd", "hello"}});
  ASSERT_OK(r);
  EXPECT_EQ((*r)["echo"], "hello");
  std::vector<UniqueFd> fds;
  auto f = client->Call({{"cmd", "fds"}}, &fds);
  ASSERT_OK(f);
  ASSERT_EQ(fds.size(), 2u);
  // The two fds are the ends of one pipe: what goes in one comes out of the other.
  ASSERT_EQ(write(fds[1].get(), "x", 1), 1);
  char c = 0;
  ASSERT_EQ(read(fds[0].get(), &c, 1), 1);
  EXPECT_EQ(c, 'x');
  auto bad = client->CallRaw("not json");
  ASSERT_OK(bad);
  EXPECT_FALSE((*bad)["ok"].get<bool>());
  auto after = client->Call({{"cmd", "still-there"}});
  ASSERT_OK(after);
  EXPECT_EQ((*after)["echo"], "still-there");
}

TEST(ControlServerTest, ServesSeveralClientsAtOnceAndOneAfterAnother) {
  ::gmem::testing::TempDir dir;
  auto server = ControlServer::Listen(dir.File("ctl"), Echo);
  ASSERT_OK(server);
  (*server)->Start();
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      auto client = ControlClient::Connect(dir.File("ctl"));
      if (!client.ok()) return;
      for (int i = 0; i < 20; ++i) {
        auto r = client->Call({{"cmd", "c" + std::to_string(t)}});
        if (r.ok() && (*r)["echo"] == "c" + std::to_string(t)) ++ok;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(ok.load(), 80);
  for (int i = 0; i < 3; ++i) {
    auto client = ControlClient::Connect(dir.File("ctl"));
    ASSERT_OK(client);
    ASSERT_OK(client->Call({{"cmd", "again"}}));
  }
}

TEST(ControlServerTest, RemovesItsSocketFile) {
  ::gmem::testing::TempDir dir;
  {
    auto server = ControlServer::Listen(dir.File("ctl"), Echo);
    ASSERT_OK(server);
    (*server)->Start();
    EXPECT_EQ(access(dir.File("ctl").c_str(), F_OK), 0);
  }
  EXPECT_NE(access(dir.File("ctl").c_str(), F_OK), 0);
  EXPECT_FALSE(ControlServer::Listen(std::string(200, 'x'), Echo).ok());
}

}  // namespace
}  // namespace gmem::vmm
