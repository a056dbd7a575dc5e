#include "config.h"

#include <map>
#include <string>

#include "gtest/gtest.h"

namespace orderflow {
namespace {

std::string Load(const std::map<std::string, std::string>& env, Config* config,
                 unsigned cores = 2) {
  return LoadConfig(
      [&env](const char* name) -> const char* {
        const auto it = env.find(name);
        return it == env.end() ? nullptr : it->second.c_str();
      },
      cores, config);
}

TEST(ConfigTest, DefaultsAreSizedToTheMachine) {
  Config config;
  ASSERT_EQ(Load({{"DATABASE_URL", "postgresql://x/y"}}, &config, 2), "");
  EXPECT_EQ(config.port, 3000);
  EXPECT_EQ(config.database_url, "postgresql://x/y");
  EXPECT_EQ(config.migration_database_url, "postgresql://x/y")
      << "migrations default to DATABASE_URL";
  EXPECT_EQ(config.db_pool_size, 8);
  EXPECT_EQ(config.http_threads, 8) << "one HTTP thread per pooled connection";
  EXPECT_EQ(config.janitor_interval_ms, 1000);
  EXPECT_EQ(config.log_level, LogLevel::kInfo);
  EXPECT_TRUE(config.db_prepare);
  EXPECT_EQ(config.bind_address, "0.0.0.0");
}

TEST(ConfigTest, BindAddressMustBeAnIpv4Address) {
  Config config;
  ASSERT_EQ(Load({{"DATABASE_URL", "u"}, {"BIND_ADDRESS", "127.0.0.1"}}, &config), "");
  EXPECT_EQ(config.bind_address, "127.0.0.1");
  EXPECT_EQ(Load({{"DATABASE_URL", "u"}, {"BIND_ADDRESS", "localhost"}}, &config),
            "BIND_ADDRESS must be an IPv4 address");
  EXPECT_EQ(Load({{"DATABASE_URL", "u"}, {"BIND_ADDRESS", "127.0.0.1:80"}}, &config),
            "BIND_ADDRESS must be an IPv4 address");
}

TEST(ConfigTest, ReadsEveryVariable) {
  Config config;
  ASSERT_EQ(Load({{"DATABASE_URL", "u"},
                  {"MIGRATION_DATABASE_URL", "owner"},
                  {"PORT", "8080"},
                  {"DB_POOL_SIZE", "3"},
                  {"HTTP_THREADS", "5"},
                  {"JANITOR_INTERVAL_MS", "250"},
                  {"LOG_LEVEL", "warn"},
                  {"DB_PREPARE", "0"}},
                 &config),
            "");
  EXPECT_EQ(config.port, 8080);
  EXPECT_EQ(config.migration_database_url, "owner");
  EXPECT_EQ(config.db_pool_size, 3);
  EXPECT_EQ(config.http_threads, 5);
  EXPECT_EQ(config.janitor_interval_ms, 250);
  EXPECT_EQ(config.log_level, LogLevel::kWarn);
  EXPECT_FALSE(config.db_prepare);
}

TEST(ConfigTest, NamesTheBadVariable) {
  Config config;
  EXPECT_EQ(Load({}, &config), "DATABASE_URL is required");
  EXPECT_EQ(Load({{"DATABASE_URL", "u"}, {"PORT", "http"}}, &config),
            "PORT must be an integer from 0 to 65535");
  EXPECT_EQ(Load({{"DATABASE_URL", "u"}, {"PORT", "70000"}}, &config),
            "PORT must be an integer from 0 to 65535");
  EXPECT_EQ(Load({{"DATABASE_URL", "u"}, {"DB_POOL_SIZE", "-1"}}, &config),
            "DB_POOL_SIZE must be an integer from 0 to 1000");
  EXPECT_EQ(Load({{"DATABASE_URL", "u"}, {"LOG_LEVEL", "loud"}}, &config),
            "LOG_LEVEL must be one of debug, info, warn, error");
}

TEST(ConfigTest, TheConsoleIsOffUnlessAdminPortIsSet) {
  Config config;
  ASSERT_EQ(Load({{"DATABASE_URL", "u"}, {"ADMIN_TOKEN", "short"}}, &config), "")
      << "ADMIN_* is not read without ADMIN_PORT";
  EXPECT_EQ(config.admin_port, -1);
  EXPECT_TRUE(config.admin_token.empty());
}

TEST(ConfigTest, TheConsoleNeedsALongTokenAndAnOperatorUrl) {
  const std::string token(32, 'k');
  Config config;
  EXPECT_EQ(Load({{"DATABASE_URL", "u"}, {"ADMIN_PORT", "3001"}}, &config),
            "ADMIN_TOKEN is required when ADMIN_PORT is set");
  EXPECT_EQ(Load({{"DATABASE_URL", "u"}, {"ADMIN_PORT", "3001"}, {"ADMIN_TOKEN", token.substr(1)}},
                 &config),
            "ADMIN_TOKEN must be at least 32 characters");
  EXPECT_EQ(
      Load({{"DATABASE_URL", "u"}, {"ADMIN_PORT", "3001"}, {"ADMIN_TOKEN", token + " x"}}, &config),
      "ADMIN_TOKEN must be printable, without white space");
  EXPECT_NE(Load({{"DATABASE_URL", "u"}, {"ADMIN_PORT", "3001"}, {"ADMIN_TOKEN", token}}, &config)
                .find("ADMIN_DATABASE_URL is required"),
            std::string::npos);
  EXPECT_EQ(Load({{"DATABASE_URL", "u"},
                  {"ADMIN_PORT", "3001"},
                  {"ADMIN_TOKEN", token},
                  {"ADMIN_BIND", "localhost"},
                  {"ADMIN_DATABASE_URL", "a"}},
                 &config),
            "ADMIN_BIND must be an IPv4 address");
  ASSERT_EQ(Load({{"DATABASE_URL", "u"},
                  {"ADMIN_PORT", "3001"},
                  {"ADMIN_TOKEN", token},
                  {"ADMIN_DATABASE_URL", "postgresql://orderflow_console@h/db"},
                  {"ADMIN_HOSTS", " Console.Example ,,ops.internal:8443 "}},
                 &config),
            "");
  EXPECT_EQ(config.admin_port, 3001);
  EXPECT_EQ(config.admin_bind, "127.0.0.1") << "loopback unless told otherwise";
  EXPECT_EQ(config.admin_token, token);
  EXPECT_EQ(config.admin_database_url, "postgresql://orderflow_console@h/db");
  EXPECT_EQ(config.admin_hosts, (std::vector<std::string>{"console.example", "ops.internal:8443"}));
}

}  // namespace
}  // namespace orderflow
