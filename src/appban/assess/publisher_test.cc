#include <gtest/gtest.h>

#include "appban/assess/detectors.h"

namespace appban::assess {
namespace {

const std::string kFingerprint(64, 'e');

std::vector<Vendor> Registry() {
  Vendor bytedance{"bytedance",
                   "ByteDance Ltd.",
                   "CN",
                   {"com.zhiliaoapp.musically", "com.ss.android.ugc.aweme"},
                   {},
                   {},
                   {"com.ss.android.ugc.aweme"},
                   "",
                   {}};
  Vendor acme{"acme", "Acme", "US", {"com.acme"}, {kFingerprint}, {"Acme Corp"}, {}, "", {}};
  return {bytedance, acme};
}

apk::SigningInfo Signed(std::string organization, std::string country, std::string sha256, bool v1_only, bool debug) {
  apk::SigningInfo signing;
  apk::Signer signer;
  signer.certificate.subject = "CN=x, O=" + organization + ", C=" + country;
  signer.certificate.subject_organization = organization;
  signer.certificate.subject_country = country;
  signer.certificate.sha256 = sha256;
  signer.certificate.debug = debug;
  signer.schemes = {v1_only ? "v1" : "v2"};
  signing.signers.push_back(signer);
  signing.v1 = v1_only;
  signing.v2 = !v1_only;
  return signing;
}

std::vector<std::string> Ids(const std::vector<Finding>& findings) {
  std::vector<std::string> ids;
  for (const Finding& f : findings) ids.push_back(f.id);
  return ids;
}

TEST(Publisher, MatchesThePackagePrefixAndKeepsUnverifiedVisible) {
  const auto signing = Signed("Someone", "SG", std::string(64, '1'), false, false);
  const Publisher publisher = DetectPublisher(signing, "com.ss.android.ugc.aweme", Registry());
  EXPECT_EQ(publisher.organization, "Someone");
  EXPECT_EQ(publisher.country, "SG");
  ASSERT_TRUE(publisher.vendor);
  EXPECT_EQ(*publisher.vendor, "ByteDance Ltd.");
  EXPECT_EQ(publisher.vendor_country, "CN");
  EXPECT_EQ(publisher.matched_by, "package_prefix");
  EXPECT_TRUE(publisher.matched_unverified);
  const auto findings = PublisherFindings(publisher, signing, Registry());
  EXPECT_EQ(Ids(findings),
            (std::vector<std::string>{"publisher.signer", "publisher.vendor.bytedance", "publisher.jurisdiction.cn"}));
  EXPECT_NE(findings[1].evidence[0].note.find("unverified"), std::string::npos);
  // A different package under the same first labels is not the vendor's.
  EXPECT_FALSE(DetectPublisher(signing, "com.ss.android.ugc.awemefan", Registry()).vendor);
  EXPECT_TRUE(DetectPublisher(signing, "com.zhiliaoapp.musically.lite", Registry()).vendor);
}

TEST(Publisher, SignerFingerprintBeatsOrganisationBeatsPackage) {
  auto by_signer =
      DetectPublisher(Signed("Other", "US", kFingerprint, false, false), "com.zhiliaoapp.musically", Registry());
  EXPECT_EQ(by_signer.matched_by, "signer");
  EXPECT_EQ(*by_signer.vendor, "Acme");
  auto by_org = DetectPublisher(Signed("acme corp", "US", std::string(64, '2'), false, false), "org.x", Registry());
  EXPECT_EQ(by_org.matched_by, "certificate_organization");
  EXPECT_FALSE(DetectPublisher(Signed("Nobody", "FR", std::string(64, '3'), false, false), "org.x", Registry()).vendor);
}

TEST(Publisher, DebugV1OnlyAndUnsigned) {
  const auto signing = Signed("Android", "US", std::string(64, '4'), true, true);
  const Publisher publisher = DetectPublisher(signing, "org.x", Registry());
  EXPECT_TRUE(publisher.v1_only);
  EXPECT_TRUE(publisher.debug_certificate);
  EXPECT_EQ(
      Ids(PublisherFindings(publisher, signing, Registry())),
      (std::vector<std::string>{"publisher.signer", "publisher.debug_certificate", "publisher.v1_only_signature"}));
  const apk::SigningInfo unsigned_info;
  EXPECT_EQ(Ids(PublisherFindings(DetectPublisher(unsigned_info, "org.x", Registry()), unsigned_info, Registry())),
            std::vector<std::string>{"publisher.unsigned"});
}

}  // namespace
}  // namespace appban::assess
