#pragma once
// ControlServer: the Unix stream socket of the control protocol (docs/control-protocol.md). One
// thread polls the listening socket and every connected client; each complete line is handed to
// the handler, and its reply (plus any fds, as SCM_RIGHTS on the reply's first byte) is written
// back before the next line of any client is read. Several clients may be connected at once;
// requests are served one at a time, in arrival order per client.
//
// The socket file is created on Listen (a stale one is replaced) and removed on destruction.

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "base/expected.h"
#include "base/unique_fd.h"

namespace gmem::vmm {

struct ControlReply {
  std::string line;           // one JSON object and '\n'
  std::vector<UniqueFd> fds;  // sent with the line, then closed
};
using ControlHandler = std::function<ControlReply(std::string_view line)>;

class ControlServer {
 public:
  // Binds and listens on `path`. kInvalidArgument for a path too long for sockaddr_un, kIo otherwise.
  static Expected<std::unique_ptr<ControlServer>> Listen(const std::string& path, ControlHandler handler);
  ~ControlServer();
  ControlServer(const ControlServer&) = delete;
  ControlServer& operator=(const ControlServer&) = delete;

  // Starts the serving thread.
  void Start();
  // Stops serving (after the request being handled, if any) and joins the thread. Idempotent.
  void Stop();

 private:
  struct Client {
    UniqueFd fd;
    std::string buffer;
  };
  ControlServer(std::string path, UniqueFd listen_fd, UniqueFd stop_fd, ControlHandler handler)
      : path_(std::move(path)), listen_fd_(std::move(listen_fd)), stop_fd_(std::move(stop_fd)),
        handler_(std::move(handler)) {}
  void Serve();
  // Reads what `client` sent and answers its complete lines; false when it should be dropped.
  bool ServiceClient(Client& client);
  bool SendReply(int fd, const ControlReply& reply);

  std::string path_;
  UniqueFd listen_fd_;
  UniqueFd stop_fd_;  // eventfd: written by Stop
  ControlHandler handler_;
  std::vector<Client> clients_;  // only the serving thread touches it
  std::thread thread_;
};

}  // namespace gmem::vmm
