// Presence: peer counts from monitor event sequences, failed handshakes by reason, and the
// fd-less handshake events credited to the right connection.
#include "tidepool/proxy/presence.h"

#include <doctest/doctest.h>
#include <zmq.h>

using tidepool::proxy::Presence;
using Change = Presence::Change;

// libzmq 4.3 gives HANDSHAKE_* events no fd (value 0 here); the class matches them to pending
// connections in order.

TEST_CASE("a fresh socket has no peers") {
  Presence p;
  CHECK_FALSE(p.up());
  CHECK(p.peers() == 0);
  CHECK(p.connects() == 0);
  CHECK(p.disconnects() == 0);
  CHECK(p.failed_handshakes_total() == 0);
  CHECK_FALSE(p.connecting());
}

TEST_CASE("accepted alone is TCP only; handshake makes the peer count") {
  Presence p;
  CHECK(p.on_event(ZMQ_EVENT_ACCEPTED, 7) == Change::kNone);
  CHECK_FALSE(p.up());
  CHECK(p.connecting());  // TCP up, handshake pending
  CHECK(p.peers() == 0);
  CHECK(p.on_event(ZMQ_EVENT_HANDSHAKE_SUCCEEDED, 0) == Change::kUp);
  CHECK_FALSE(p.connecting());
  CHECK(p.up());
  CHECK(p.peers() == 1);
  CHECK(p.connects() == 1);
  CHECK(p.on_event(ZMQ_EVENT_DISCONNECTED, 7) == Change::kDown);
  CHECK_FALSE(p.up());
  CHECK(p.peers() == 0);
  CHECK(p.disconnects() == 1);
  CHECK(p.connects() == 1);
}

TEST_CASE("connected (our connect side) works like accepted") {
  Presence p;
  CHECK(p.on_event(ZMQ_EVENT_CONNECT_DELAYED, 0) == Change::kNone);
  CHECK(p.on_event(ZMQ_EVENT_CONNECTED, 11) == Change::kNone);
  CHECK(p.on_event(ZMQ_EVENT_HANDSHAKE_SUCCEEDED, 0) == Change::kUp);
  CHECK(p.on_event(ZMQ_EVENT_DISCONNECTED, 11) == Change::kDown);
  CHECK(p.on_event(ZMQ_EVENT_CONNECT_RETRIED, 100) == Change::kNone);
  CHECK(p.peers() == 0);
}

TEST_CASE("two peers: up with the first, down only when the last leaves") {
  Presence p;
  CHECK(p.on_event(ZMQ_EVENT_ACCEPTED, 7) == Change::kNone);
  CHECK(p.on_event(ZMQ_EVENT_ACCEPTED, 8) == Change::kNone);
  CHECK(p.on_event(ZMQ_EVENT_HANDSHAKE_SUCCEEDED, 0) == Change::kUp);
  CHECK(p.on_event(ZMQ_EVENT_HANDSHAKE_SUCCEEDED, 0) == Change::kNone);
  CHECK(p.peers() == 2);
  CHECK(p.connects() == 2);
  CHECK(p.on_event(ZMQ_EVENT_DISCONNECTED, 7) == Change::kNone);
  CHECK(p.up());
  CHECK(p.peers() == 1);
  CHECK(p.on_event(ZMQ_EVENT_DISCONNECTED, 8) == Change::kDown);
  CHECK(p.peers() == 0);
  CHECK(p.disconnects() == 2);
}

TEST_CASE("a failed handshake never counts; its DISCONNECTED counts it as failed") {
  for (const int failure : {ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL,
                            ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL, ZMQ_EVENT_HANDSHAKE_FAILED_AUTH}) {
    CAPTURE(failure);
    Presence p;
    CHECK(p.on_event(ZMQ_EVENT_ACCEPTED, 9) == Change::kNone);
    CHECK(p.on_event(static_cast<std::uint16_t>(failure), 0) == Change::kNone);
    CHECK_FALSE(p.up());
    // libzmq always follows a failed handshake with DISCONNECTED for the fd.
    CHECK(p.on_event(ZMQ_EVENT_DISCONNECTED, 9) == Change::kNone);
    CHECK_FALSE(p.up());
    CHECK(p.failed_handshakes_total() == 1);
    CHECK(p.connects() == 0);
    CHECK(p.disconnects() == 0);
    // The failed connection no longer waits for a handshake: the next success is fd 10's.
    CHECK(p.on_event(ZMQ_EVENT_ACCEPTED, 10) == Change::kNone);
    CHECK(p.on_event(ZMQ_EVENT_HANDSHAKE_SUCCEEDED, 0) == Change::kUp);
    CHECK(p.on_event(ZMQ_EVENT_DISCONNECTED, 10) == Change::kDown);
    CHECK(p.failed_handshakes_total() == 1);
    CHECK(p.disconnects() == 1);
  }
}

TEST_CASE("a connection closed without any handshake event counts as failed (ZMTP 1.0 garbage)") {
  Presence p;
  CHECK(p.on_event(ZMQ_EVENT_ACCEPTED, 9) == Change::kNone);
  CHECK(p.on_event(ZMQ_EVENT_DISCONNECTED, 9) == Change::kNone);
  CHECK(p.failed_handshakes_total() == 1);
  CHECK(p.disconnects() == 0);
  CHECK(p.peers() == 0);
}

TEST_CASE("a connection closed before its handshake leaves the pending list") {
  Presence p;
  p.on_event(ZMQ_EVENT_ACCEPTED, 5);
  p.on_event(ZMQ_EVENT_ACCEPTED, 6);
  CHECK(p.on_event(ZMQ_EVENT_DISCONNECTED, 5) == Change::kNone);
  CHECK(p.disconnects() == 0);
  CHECK(p.failed_handshakes_total() == 1);
  CHECK(p.on_event(ZMQ_EVENT_HANDSHAKE_SUCCEEDED, 0) == Change::kUp);
  // The live peer is fd 6, so its DISCONNECTED takes the socket down.
  CHECK(p.on_event(ZMQ_EVENT_DISCONNECTED, 6) == Change::kDown);
  CHECK(p.disconnects() == 1);
  CHECK(p.failed_handshakes_total() == 1);
}

// Regression: a silent connection older than a real peer must not take the real peer's
// handshake with it when it closes.
TEST_CASE("a silent connection closing does not hide a live peer that handshook meanwhile") {
  Presence p;
  CHECK(p.on_event(ZMQ_EVENT_ACCEPTED, 9) == Change::kNone);           // silent TCP probe
  CHECK(p.on_event(ZMQ_EVENT_ACCEPTED, 10) == Change::kNone);          // real peer
  CHECK(p.on_event(ZMQ_EVENT_HANDSHAKE_SUCCEEDED, 0) == Change::kUp);  // fd 10's handshake
  // The probe closes mid-handshake: libzmq reports the failure, then the disconnect.
  CHECK(p.on_event(ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL, 104) == Change::kNone);
  CHECK(p.on_event(ZMQ_EVENT_DISCONNECTED, 9) == Change::kNone);
  CHECK(p.up());
  CHECK(p.peers() == 1);
  CHECK(p.disconnects() == 0);
  CHECK(p.failed_handshakes_total() == 1);
  CHECK(p.on_event(ZMQ_EVENT_DISCONNECTED, 10) == Change::kDown);
  CHECK(p.disconnects() == 1);
  CHECK(p.failed_handshakes_total() == 1);
}

TEST_CASE("DISCONNECTED for an unknown fd is ignored") {
  Presence p;
  CHECK(p.on_event(ZMQ_EVENT_DISCONNECTED, 42) == Change::kNone);
  CHECK(p.disconnects() == 0);
  p.on_event(ZMQ_EVENT_ACCEPTED, 7);
  p.on_event(ZMQ_EVENT_HANDSHAKE_SUCCEEDED, 0);
  CHECK(p.on_event(ZMQ_EVENT_DISCONNECTED, 42) == Change::kNone);
  CHECK(p.up());
  CHECK(p.peers() == 1);
  CHECK(p.disconnects() == 0);
  // A repeated DISCONNECTED for a peer already gone is not counted twice.
  CHECK(p.on_event(ZMQ_EVENT_DISCONNECTED, 7) == Change::kDown);
  CHECK(p.on_event(ZMQ_EVENT_DISCONNECTED, 7) == Change::kNone);
  CHECK(p.disconnects() == 1);
}

TEST_CASE("a handshake with nothing pending is ignored") {
  Presence p;
  CHECK(p.on_event(ZMQ_EVENT_HANDSHAKE_SUCCEEDED, 0) == Change::kNone);
  CHECK_FALSE(p.up());
  CHECK(p.connects() == 0);
}

TEST_CASE("MONITOR_STOPPED clears live and pending peers and counts the live ones as lost") {
  Presence p;
  p.on_event(ZMQ_EVENT_ACCEPTED, 7);
  p.on_event(ZMQ_EVENT_ACCEPTED, 8);
  p.on_event(ZMQ_EVENT_HANDSHAKE_SUCCEEDED, 0);
  p.on_event(ZMQ_EVENT_HANDSHAKE_SUCCEEDED, 0);
  p.on_event(ZMQ_EVENT_ACCEPTED, 9);  // still pending
  CHECK(p.on_event(ZMQ_EVENT_MONITOR_STOPPED, 0) == Change::kDown);
  CHECK_FALSE(p.up());
  CHECK(p.peers() == 0);
  CHECK(p.disconnects() == 2);
  CHECK(p.connects() == 2);
  // fd 9 is no longer pending: a late handshake event finds nothing to promote.
  CHECK(p.on_event(ZMQ_EVENT_HANDSHAKE_SUCCEEDED, 0) == Change::kNone);
  CHECK(p.peers() == 0);
  // Stopping with nothing live is not a change.
  CHECK(p.on_event(ZMQ_EVENT_MONITOR_STOPPED, 0) == Change::kNone);
  CHECK(p.disconnects() == 2);
}

TEST_CASE("a reused fd after a disconnect counts again") {
  Presence p;
  for (int round = 0; round < 3; ++round) {
    CHECK(p.on_event(ZMQ_EVENT_ACCEPTED, 7) == Change::kNone);
    CHECK(p.on_event(ZMQ_EVENT_HANDSHAKE_SUCCEEDED, 0) == Change::kUp);
    CHECK(p.on_event(ZMQ_EVENT_DISCONNECTED, 7) == Change::kDown);
  }
  CHECK(p.connects() == 3);
  CHECK(p.disconnects() == 3);
}

TEST_CASE("a connection ended unreported is dropped when its fd is reported again") {
  // zmq_disconnect() ends its connections with no DISCONNECTED; one that was reported just
  // before would otherwise stay on record, and a live one would keep the socket up forever.
  Presence p;
  CHECK(p.on_event(ZMQ_EVENT_CONNECTED, 7) == Change::kNone);
  CHECK(p.on_event(ZMQ_EVENT_CONNECTED, 7) == Change::kNone);  // the stale one is dropped
  CHECK(p.on_event(ZMQ_EVENT_HANDSHAKE_SUCCEEDED, 0) == Change::kUp);
  CHECK(p.peers() == 1);
  CHECK_FALSE(p.connecting());
  CHECK(p.failed_handshakes_total() == 0);  // tidepool's own disconnect, not a failure
  // Live and ended unreported: the next connection on fd 7 ends it, as a lost peer.
  CHECK(p.on_event(ZMQ_EVENT_CONNECTED, 7) == Change::kDown);
  CHECK(p.disconnects() == 1);
  CHECK(p.connecting());
  CHECK(p.on_event(ZMQ_EVENT_HANDSHAKE_SUCCEEDED, 0) == Change::kUp);
  CHECK(p.on_event(ZMQ_EVENT_DISCONNECTED, 7) == Change::kDown);
  CHECK_FALSE(p.up());
  CHECK(p.connects() == 2);
  CHECK(p.disconnects() == 2);
}

TEST_CASE("end_closed ends the live connections it is told are closed, each once, as disconnects") {
  Presence p;
  p.on_event(ZMQ_EVENT_CONNECTED, 7);
  p.on_event(ZMQ_EVENT_HANDSHAKE_SUCCEEDED, 0);
  p.on_event(ZMQ_EVENT_CONNECTED, 8);
  p.on_event(ZMQ_EVENT_HANDSHAKE_SUCCEEDED, 0);
  const auto closed = [](std::uint32_t fd) { return fd != 8; };
  CHECK(p.end_closed(closed) == Change::kNone);  // 8 is still up
  CHECK(p.peers() == 1);
  CHECK(p.disconnects() == 1);
  CHECK(p.end_closed([](std::uint32_t) { return true; }) == Change::kDown);
  CHECK(p.disconnects() == 2);
  CHECK(p.end_closed([](std::uint32_t) { return true; }) == Change::kNone);
  CHECK(p.disconnects() == 2);
  // A late DISCONNECTED for one already ended counts nothing.
  CHECK(p.on_event(ZMQ_EVENT_DISCONNECTED, 8) == Change::kNone);
  CHECK(p.disconnects() == 2);
  CHECK(p.failed_handshakes_total() == 0);
}

TEST_CASE("end_closed ends nothing while a connection is pending: the credit may be wrong") {
  // fd 10 ended unreported before its handshake, and its fd went elsewhere; fd 12's handshake
  // is credited to it. Ending 10 as closed would leave 12, the live one, pending.
  Presence p;
  p.on_event(ZMQ_EVENT_CONNECTED, 10);
  p.on_event(ZMQ_EVENT_CONNECTED, 12);
  CHECK(p.on_event(ZMQ_EVENT_HANDSHAKE_SUCCEEDED, 0) == Change::kUp);
  CHECK(p.end_closed([](std::uint32_t fd) { return fd == 10; }) == Change::kNone);
  CHECK(p.up());
  CHECK(p.disconnects() == 0);
}

TEST_CASE("events that carry no presence information change nothing") {
  Presence p;
  p.on_event(ZMQ_EVENT_ACCEPTED, 7);
  p.on_event(ZMQ_EVENT_HANDSHAKE_SUCCEEDED, 0);
  for (const int event : {ZMQ_EVENT_LISTENING, ZMQ_EVENT_BIND_FAILED, ZMQ_EVENT_ACCEPT_FAILED,
                          ZMQ_EVENT_CLOSED, ZMQ_EVENT_CLOSE_FAILED}) {
    CHECK(p.on_event(static_cast<std::uint16_t>(event), 7) == Change::kNone);
  }
  CHECK(p.peers() == 1);
}

TEST_CASE("failed handshakes are counted by reason") {
  using tidepool::proxy::HandshakeFailure;
  struct Case {
    std::uint16_t event;
    std::uint32_t value;
    HandshakeFailure reason;
  };
  const Case cases[] = {
      {ZMQ_EVENT_HANDSHAKE_FAILED_AUTH, 400, HandshakeFailure::kUnauthorized},
      {ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL, ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH,
       HandshakeFailure::kMechanism},
      {ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL, ZMQ_PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC,
       HandshakeFailure::kCryptographic},
      {ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL, ZMQ_PROTOCOL_ERROR_ZMTP_INVALID_METADATA,
       HandshakeFailure::kProtocol},
      {ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL, 104, HandshakeFailure::kIncomplete},
  };
  for (const auto& c : cases) {
    CAPTURE(tidepool::proxy::to_label(c.reason));
    Presence p;
    p.on_event(ZMQ_EVENT_ACCEPTED, 7);
    p.on_event(c.event, c.value);
    p.on_event(ZMQ_EVENT_DISCONNECTED, 7);
    CHECK(p.failed_handshakes()[static_cast<std::size_t>(c.reason)] == 1);
    CHECK(p.failed_handshakes_total() == 1);
  }
  // Closed with no failure event at all (a refused ZMTP 1.0 peer): incomplete.
  Presence p;
  p.on_event(ZMQ_EVENT_ACCEPTED, 7);
  p.on_event(ZMQ_EVENT_DISCONNECTED, 7);
  CHECK(p.failed_handshakes()[static_cast<std::size_t>(HandshakeFailure::kIncomplete)] == 1);
}
