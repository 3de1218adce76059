#pragma once
// Endpoints of a migration stream: the source connects (or creates the file), the target listens
// (or opens the file). Sockets run the channel handshake and may carry the switchover; files and
// inherited fds carry the stream only.

#include <memory>
#include <string>
#include <vector>

#include "base/expected.h"
#include "base/secret.h"
#include "transport/direct_file.h"
#include "transport/fd_channel.h"
#include "transport/handshake.h"
#include "transport/uri.h"

namespace gmem::migrate {

struct Endpoint {
  std::unique_ptr<transport::FdChannel> channel;
  // A socket with a peer that can answer (tcp:, unix:, or an fd that is a stream socket).
  bool interactive = false;
  // A regular file is written or read with O_DIRECT where the filesystem allows it
  // (transport/direct_file.h): the stream then goes through one of these instead of `channel`.
  std::unique_ptr<transport::DirectFileWriter> direct_writer;
  std::unique_ptr<transport::DirectFileReader> direct_reader;

  ByteSink& sink() { return direct_writer != nullptr ? static_cast<ByteSink&>(*direct_writer) : *channel; }
  ByteSource& source() {
    return direct_reader != nullptr ? static_cast<ByteSource&>(*direct_reader) : *channel;
  }
  // Writes out what the direct writer still holds and waits for it (nothing to do otherwise).
  Status Flush() { return direct_writer != nullptr ? direct_writer->Finish() : Status::Ok(); }
};

// Opens the source's end of `uri`: connects tcp:/unix: (retrying for up to `timeout_ms` while the
// target is not listening yet), takes fd:N over (a dup), or creates file:PATH (mode 0600). A
// regular file gets a direct writer.
Expected<Endpoint> OpenSourceEndpoint(const transport::Uri& uri, int timeout_ms);

// Runs the channel handshake on an interactive endpoint as channel `channel` of `channel_count`
// (channels after 0 carry channel 0's `session`); a random stream id for a file otherwise.
Expected<transport::SessionId> EstablishSession(Endpoint& endpoint, const SecretBytes& key, bool insecure,
                                                transport::HandshakeOptions::Role role, uint16_t channel = 0,
                                                uint16_t channel_count = 1, const transport::SessionId& session = {});

// The target's channels of one migration and their session.
struct TargetChannels {
  std::vector<Endpoint> endpoints;  // channel order
  transport::SessionId session{};
};

// Opens the target's end of `uri` and runs the handshake on every channel: listens on
// tcp:/unix:, accepts channel 0 within `timeout_ms` (-1: forever), learns the channel count from
// its HELLO, and accepts the others in order; takes fd:N over, or opens file:PATH for reading.
// An fd:N that is a listening socket (systemd socket activation hands one over) is accepted on
// like tcp:/unix:; it stays open (the caller owns it).
inline constexpr uint16_t kMaxChannels = 16;
Expected<TargetChannels> AcceptTargetChannels(const transport::Uri& uri, int timeout_ms, const SecretBytes& key,
                                              bool insecure);

}  // namespace gmem::migrate
