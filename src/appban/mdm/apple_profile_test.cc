#include "appban/mdm/apple_profile.h"

#include <gtest/gtest.h>

#include <cstdlib>

#include "appban/mdm/apple_commands.h"
#include "appban/mdm/apple_test_support.h"
#include "apple_schema.h"

namespace appban::mdm {
namespace {

using appban::testing::AppleSchemas;
using appban::testing::AppleTarget;
using testing::kTikTok;
using testing::kWeChat;

const AppleSchemas& Schemas() {
  static const AppleSchemas schemas = [] {
    auto loaded = AppleSchemas::Load(testing::AppleSpecDir());
    EXPECT_TRUE(loaded.ok()) << loaded.status().ToString();
    return std::move(*loaded);
  }();
  return schemas;
}

const RestrictionsProfileOptions kOptions{"gov.example.appban.restrictions", "Example CIO Office"};

std::string Joined(const std::vector<std::string>& lines) {
  std::string out;
  for (const auto& line : lines) out += line + "\n";
  return out;
}

TEST(AppleProfile, ConformsToApplesSchemaKeysTypesAndPresence) {
  plist::Value profile = BuildRestrictionsProfile(kOptions, {kWeChat, kTikTok});
  EXPECT_EQ(Joined(Schemas().ValidateProfile(profile)), "");
  // Round trip through the XML that is signed: what the device reads conforms too.
  auto parsed = plist::Parse(AsBytes(RestrictionsProfileXml(kOptions, {kWeChat, kTikTok})));
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(*parsed, profile);
  EXPECT_EQ(*parsed->FindString("PayloadType"), "Configuration");
  const plist::Value& payload = parsed->FindArray("PayloadContent")->front();
  EXPECT_EQ(*payload.FindString("PayloadType"), "com.apple.applicationaccess");
  EXPECT_EQ(payload.FindStrings("blockedAppBundleIDs"), (std::vector<std::string>{kWeChat, kTikTok}));  // sorted
}

TEST(AppleProfile, TheValidatorRefusesWhatApplesSchemaRefuses) {
  plist::Value profile = BuildRestrictionsProfile(kOptions, {kWeChat});
  plist::Value broken = profile;
  broken.Set("PayloadVersion", plist::Value::String("1"));  // wrong type
  broken.Set("blockedApps", plist::Value::Boolean(true));   // unknown key
  std::string errors = Joined(Schemas().ValidateProfile(broken));
  EXPECT_NE(errors.find("PayloadVersion: must be <integer>"), std::string::npos) << errors;
  EXPECT_NE(errors.find("blockedApps: unknown key"), std::string::npos) << errors;
  plist::Value missing = plist::Value::MakeDict();
  missing.Set("PayloadType", plist::Value::String("Configuration"));
  errors = Joined(Schemas().ValidateProfile(missing));
  EXPECT_NE(errors.find("PayloadUUID: required key missing"), std::string::npos) << errors;
  plist::Value wrong_value = profile;
  wrong_value.Set("PayloadVersion", plist::Value::Integer(2));  // rangelist [1]
  EXPECT_NE(Joined(Schemas().ValidateProfile(wrong_value)).find("not an allowed value"), std::string::npos);
}

TEST(AppleProfile, SupportedOsBlockedAppsNeedSupervisedIos15) {
  plist::Value profile = BuildRestrictionsProfile(kOptions, {kWeChat});
  EXPECT_EQ(Joined(Schemas().UnsupportedInProfile(profile, AppleTarget{"iOS", "17.5", true})), "");
  EXPECT_EQ(Joined(Schemas().UnsupportedInProfile(profile, AppleTarget{"iOS", "15.0", true})), "");
  EXPECT_EQ(Joined(Schemas().UnsupportedInProfile(profile, AppleTarget{"iOS", "17.5", false})),
            "com.apple.applicationaccess.blockedAppBundleIDs: needs a supervised device\n");
  EXPECT_EQ(Joined(Schemas().UnsupportedInProfile(profile, AppleTarget{"iOS", "14.8", true})),
            "com.apple.applicationaccess.blockedAppBundleIDs: needs iOS 15.0 or later (device has 14.8)\n");
  EXPECT_NE(Joined(Schemas().UnsupportedInProfile(profile, AppleTarget{"macOS", "15.0", true})).find("not available"),
            std::string::npos);
}

TEST(AppleProfile, IdentifiersAreStableSoRegenerationIsIdempotent) {
  const std::string first = RestrictionsProfileXml(kOptions, {kWeChat, kTikTok});
  EXPECT_EQ(RestrictionsProfileXml(kOptions, {kTikTok, kWeChat, kWeChat}), first);  // order, duplicates
  plist::Value a = BuildRestrictionsProfile(kOptions, {kWeChat, kTikTok});
  plist::Value b = BuildRestrictionsProfile(kOptions, {kTikTok});
  EXPECT_EQ(*a.FindString("PayloadIdentifier"), *b.FindString("PayloadIdentifier"));  // b replaces a
  EXPECT_NE(*a.FindString("PayloadUUID"), *b.FindString("PayloadUUID"));
  EXPECT_EQ(*a.FindArray("PayloadContent")->front().FindString("PayloadIdentifier"),
            "gov.example.appban.restrictions.applicationaccess");
  const std::string uuid = *a.FindString("PayloadUUID");
  ASSERT_EQ(uuid.size(), 36u);
  EXPECT_EQ(uuid[14], '5');  // version 5
  EXPECT_EQ(NameBasedUuid("x"), NameBasedUuid("x"));
  EXPECT_NE(RandomUuid(), RandomUuid());
}

TEST(AppleProfile, SignedProfileVerifiesWithOpensslCms) {
  auto identity = SigningIdentity::FromPem(testing::TestSigning().certificate_pem, testing::TestSigning().key_pem);
  ASSERT_TRUE(identity.ok()) << identity.status().ToString();
  EXPECT_NE(identity->subject().find("appban profile signing (test)"), std::string::npos);
  const std::string xml = RestrictionsProfileXml(kOptions, {kWeChat});
  auto signed_profile = identity->Sign(xml);
  ASSERT_TRUE(signed_profile.ok()) << signed_profile.status().ToString();
  testing::TempDir dir;
  const std::string in = dir.path() + "/profile.mobileconfig", out = dir.path() + "/content.xml",
                    ca = dir.path() + "/signer.pem";
  ASSERT_TRUE(WriteFileAtomically(in, *signed_profile).ok());
  ASSERT_TRUE(WriteFileAtomically(ca, testing::TestSigning().certificate_pem).ok());
  // Debian's openssl: the signature and the certificate chain (the self-signed signer as CA).
  const std::string command = "openssl cms -verify -binary -inform DER -in " + in + " -CAfile " + ca +
                              " -purpose any -out " + out + " 2>" + dir.path() + "/err";
  ASSERT_EQ(std::system(command.c_str()), 0) << *ReadFileToString(dir.path() + "/err", 1 << 16);
  EXPECT_EQ(*ReadFileToString(out, 1 << 20), xml);
  // A flipped byte in the content fails verification.
  std::string tampered = *signed_profile;
  tampered[tampered.find("com.tencent.xin")] = 'C';
  ASSERT_TRUE(WriteFileAtomically(in, tampered).ok());
  EXPECT_NE(std::system(command.c_str()), 0);
}

TEST(AppleProfile, KeyThatIsNotTheCertificatesIsRefused) {
  testing::SigningFiles other = testing::MakeSigningIdentity();
  auto mismatched = SigningIdentity::FromPem(testing::TestSigning().certificate_pem, other.key_pem);
  ASSERT_FALSE(mismatched.ok());
  EXPECT_NE(mismatched.status().message().find("does not belong"), std::string::npos);
  testing::TempDir dir;
  ASSERT_TRUE(WriteFileAtomically(dir.path() + "/c.pem", testing::TestSigning().certificate_pem).ok());
  ASSERT_TRUE(WriteFileAtomically(dir.path() + "/k.pem", testing::TestSigning().key_pem, 0644).ok());
  auto loose = LoadSigningIdentity(dir.path() + "/c.pem", dir.path() + "/k.pem");
  ASSERT_FALSE(loose.ok());
  EXPECT_NE(loose.status().message().find("must be mode 0600"), std::string::npos) << loose.status().ToString();
}

TEST(AppleCommands, EveryCommandConformsToItsSchema) {
  const std::string profile = "signed-profile-bytes";
  for (const MdmCommand& command :
       {InstallProfileCommand(RandomUuid(), "gov.example.appban.restrictions", profile),
        RemoveProfileCommand(RandomUuid(), "gov.example.appban.restrictions"),
        RemoveApplicationCommand(RandomUuid(), kWeChat), InstalledApplicationListCommand(RandomUuid()),
        DeviceInformationCommand(RandomUuid())}) {
    auto parsed = plist::Parse(AsBytes(command.Xml()));
    ASSERT_TRUE(parsed.ok()) << command.request_type;
    EXPECT_EQ(Joined(Schemas().ValidateCommand(*parsed)), "") << command.request_type;
    EXPECT_EQ(*parsed->FindString("CommandUUID"), command.uuid);
    // And the command is available to a supervised iPhone on iOS 15.
    const auto* schema = Schemas().Command(command.request_type);
    ASSERT_NE(schema, nullptr);
    EXPECT_EQ(Joined(schema->Unsupported(*parsed->Find("Command"), AppleTarget{"iOS", "15.0", true})), "")
        << command.request_type;
  }
  plist::Value bad = RemoveApplicationCommand(RandomUuid(), kWeChat).plist;
  plist::Value command = *bad.Find("Command");
  command.Set("Identifier", plist::Value::Integer(7));
  command.Set("Force", plist::Value::Boolean(true));
  bad.Set("Command", command);
  const std::string errors = Joined(Schemas().ValidateCommand(bad));
  EXPECT_NE(errors.find("Command.Identifier: must be <string>"), std::string::npos) << errors;
  EXPECT_NE(errors.find("Command.Force: unknown key"), std::string::npos) << errors;
}

}  // namespace
}  // namespace appban::mdm
