#include <gtest/gtest.h>

#include "appban/assess/detectors.h"

namespace appban::assess {
namespace {

TrackerSet Trackers() {
  auto set = ParseTrackers(R"({"trackers": {
    "1": {"id": 1, "name": "AppsFlyer", "website": "", "code_signature": "com.appsflyer.", "network_signature": "appsflyer.com"},
    "9": {"id": 9, "name": "Krux", "website": "", "code_signature": "com.krux.", "network_signature": "krxd.net"}}})",
                           "t.json");
  EXPECT_TRUE(set.ok());
  return std::move(set).value();
}

TEST(Endpoints, HostValidationRejectsJavaNamesAndFiles) {
  for (const char* host : {"api.example.com", "cdn.krxd.net", "t.appsflyer.com", "www.example.co"}) {
    EXPECT_TRUE(LooksLikeHost(host, true)) << host;
  }
  for (const char* not_host : {"R.layout", "com.example.app", "com.google.android", "java.lang.String", "config.json",
                               "index.html", "libfoo.so", "Api.Example.com", "a.b", "localhost", "example", "-a.com",
                               "org.chromium.net", "foo..com", "x.c0m"}) {
    EXPECT_FALSE(LooksLikeHost(not_host, true)) << not_host;
  }
  // Inside a URL the scheme already says it is a host: any alphabetic TLD will do.
  EXPECT_TRUE(LooksLikeHost("example.app", false));
  EXPECT_FALSE(LooksLikeHost("example.123", false));
}

TEST(Endpoints, IpLiterals) {
  EXPECT_TRUE(IsIpLiteral("8.8.8.8"));
  EXPECT_TRUE(IsIpLiteral("2001:db8::1"));
  EXPECT_FALSE(IsIpLiteral("8.8.8"));
  EXPECT_FALSE(IsIpLiteral("256.1.1.1"));
  EXPECT_FALSE(IsIpLiteral("::"));
  EXPECT_FALSE(IsIpLiteral("a:b"));
}

TEST(Endpoints, ExtractsUrlsHostsAndIpsWithTrackerNotes) {
  const TrackerSet set = Trackers();
  std::vector<TrackerMatch> detected(1);
  detected[0].id = 1;
  detected[0].name = "AppsFlyer";
  const std::vector<LocatedString> strings = {
      {"https://t.AppsFlyer.com/api/v4/androidevent?app_id=", "classes.dex"},
      {"see http://user@cdn.krxd.net:8080/pixel.gif, then", "classes2.dex"},
      {"https://%s/api", "classes.dex"},
      {"content://com.android.contacts/data", "classes.dex"},
      {"api.example.com", "classes.dex"},
      {"com.example.app", "classes.dex"},
      {"R.layout", "classes.dex"},
      {"93.184.216.34", "classes.dex"},
      {"http://10.0.0.1/admin", "classes.dex"},
      {"wss://[2001:db8::7]:443/socket", "classes.dex"},
      {"https://example.org/a", "AndroidManifest.xml"},
  };
  const EndpointScan scan = ScanEndpoints(strings, set, &detected);
  EXPECT_EQ(scan.endpoints.urls, (std::vector<std::string>{
                                     "http://10.0.0.1/admin",
                                     "http://user@cdn.krxd.net:8080/pixel.gif",
                                     "https://example.org/a",
                                     "https://t.appsflyer.com/api/v4/androidevent?app_id=",
                                     "wss://[2001:db8::7]:443/socket",
                                 }));
  EXPECT_EQ(scan.endpoints.hosts,
            (std::vector<std::string>{"api.example.com", "cdn.krxd.net", "example.org", "t.appsflyer.com"}));
  EXPECT_EQ(scan.endpoints.ips, (std::vector<std::string>{"10.0.0.1", "2001:db8::7", "93.184.216.34"}));
  EXPECT_EQ(scan.endpoints.tracker_hosts,
            (std::map<std::string, std::string>{{"cdn.krxd.net", "Krux"}, {"t.appsflyer.com", "AppsFlyer"}}));
  EXPECT_EQ(detected[0].hosts, std::vector<std::string>{"t.appsflyer.com"});

  const std::vector<Finding> findings = EndpointFindings(scan);
  std::vector<std::string> ids;
  for (const Finding& f : findings) ids.push_back(f.id);
  EXPECT_EQ(ids, (std::vector<std::string>{"endpoint.tracker_hosts", "endpoint.cleartext_urls", "endpoint.ip_literals",
                                           "endpoint.hosts"}));
  // Tracker hosts carry a note naming the tracker and where the host was seen.
  ASSERT_EQ(findings[0].evidence.size(), 2u);
  EXPECT_EQ(findings[0].evidence[0].value, "cdn.krxd.net");
  EXPECT_EQ(findings[0].evidence[0].location, "classes2.dex");
  EXPECT_EQ(findings[0].evidence[0].note, "tracker: Krux");
  // Cleartext: the two http:// URLs. Only routable addresses count as hard-coded public IPs:
  // 10.0.0.1 is private (the documentation prefix 2001:db8:: is not special-cased).
  EXPECT_EQ(findings[1].evidence.size(), 2u);
  std::vector<std::string> ips;
  for (const Evidence& e : findings[2].evidence) ips.push_back(e.value);
  EXPECT_EQ(ips, (std::vector<std::string>{"2001:db8::7", "93.184.216.34"}));
}

TEST(Endpoints, XmlNamespaceUrlsAreNotEndpoints) {
  const EndpointScan scan = ScanEndpoints({{"http://schemas.android.com/apk/res/android", "classes.dex"},
                                           {"http://www.w3.org/2001/XMLSchema-instance", "classes.dex"},
                                           {"http://java.sun.com/xml/ns/javaee", "classes.dex"},
                                           {"http://java.sun.com/downloads", "classes.dex"}},
                                          Trackers(), nullptr);
  EXPECT_EQ(scan.endpoints.urls, (std::vector<std::string>{"http://java.sun.com/downloads"}));
  EXPECT_EQ(scan.endpoints.hosts, (std::vector<std::string>{"java.sun.com"}));
}

TEST(Endpoints, NothingFoundMeansNoFindings) {
  const EndpointScan scan =
      ScanEndpoints({{"hello", "classes.dex"}, {"java.lang.Object", "classes.dex"}}, Trackers(), nullptr);
  EXPECT_TRUE(scan.endpoints.hosts.empty());
  EXPECT_TRUE(EndpointFindings(scan).empty());
}

}  // namespace
}  // namespace appban::assess
