#include "listen_address.h"

#include <gtest/gtest.h>

#include "server_options.h"

namespace ptq::server {
namespace {

TEST(ListenAddressTest, LoopbackAndUnixSocketsStayOnTheMachine) {
  EXPECT_TRUE(IsLoopbackOnly("127.0.0.1:50051"));
  EXPECT_TRUE(IsLoopbackOnly("127.3.2.1:0"));
  EXPECT_TRUE(IsLoopbackOnly("localhost:50051"));
  EXPECT_TRUE(IsLoopbackOnly("[::1]:50051"));
  EXPECT_TRUE(IsLoopbackOnly("unix:/run/ptq.sock"));
  EXPECT_FALSE(IsLoopbackOnly("0.0.0.0:50051"));
  EXPECT_FALSE(IsLoopbackOnly("[::]:50051"));
  EXPECT_FALSE(IsLoopbackOnly("10.1.2.3:50051"));
  EXPECT_FALSE(IsLoopbackOnly("128.0.0.1:50051"));
  EXPECT_FALSE(IsLoopbackOnly("ptq.example.com:50051"));
  EXPECT_FALSE(IsLoopbackOnly(":50051"));
}

// Regression: the server listened on every interface unless told otherwise.
TEST(ListenAddressTest, TheServerListensOnLoopbackUnlessTold) {
  EXPECT_TRUE(IsLoopbackOnly(ServerOptions().listen_address)) << ServerOptions().listen_address;
}

}  // namespace
}  // namespace ptq::server
