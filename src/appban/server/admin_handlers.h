// The admin API's handlers, one group per resource file; admin_api.cc's routing table names each
// with its method, path and role. A handler may assume its caller authenticated the token, checked
// the role and validated nothing else (path ids and bodies are the handler's job).
#pragma once

#include "appban/server/admin_call.h"

namespace appban::server::admin {

// admin_rules.cc
HttpResponse ListRules(Call& call);
HttpResponse ProposeRule(Call& call);
HttpResponse GetRule(Call& call);
HttpResponse ApproveRule(Call& call);
HttpResponse PublishRule(Call& call);
HttpResponse RevokeRule(Call& call);

// admin_waivers.cc
HttpResponse ListWaivers(Call& call);
HttpResponse AddWaiver(Call& call);
HttpResponse RevokeWaiver(Call& call);

// admin_catalog.cc: the catalog of government app bans against our rules
HttpResponse ListCatalog(Call& call);

// admin_vendors.cc
HttpResponse ListVendors(Call& call);
HttpResponse MergeVendor(Call& call);

// admin_groups_devices.cc
HttpResponse ListGroups(Call& call);
HttpResponse GetGroup(Call& call);
HttpResponse CreateGroup(Call& call);
HttpResponse AddGroupDevices(Call& call);
HttpResponse DeleteGroup(Call& call);
HttpResponse ListDevices(Call& call);
HttpResponse GetDevice(Call& call);
HttpResponse RevokeDevice(Call& call);

// admin_api_tokens.cc
HttpResponse WhoAmI(Call& call);
HttpResponse CreateApiToken(Call& call);
HttpResponse ListUsers(Call& call);
HttpResponse CreateServiceAccount(Call& call);
HttpResponse GrantUserRole(Call& call);
HttpResponse LinkUser(Call& call);
HttpResponse EndUserSessions(Call& call);

// Changes waiting for a quorum (admin_changes.cc).
HttpResponse ListChanges(Call& call);
HttpResponse GetChange(Call& call);
HttpResponse ApproveChange(Call& call);
HttpResponse WithdrawChange(Call& call);
HttpResponse ProposeKeyRotation(Call& call);
// Proposes granting `target` the admin role.
HttpResponse ProposeAdminGrant(Call& call, const store::User& target);
// The answer to a step of a change: 202 {"change"} while it waits for more people; once the
// quorum is reached, applies it (as the caller) and answers 200 {"change", "result"}.
HttpResponse ChangeAnswer(Call& call, decide::PolicyAdmin& admin, const Result<store::Change>& change);
HttpResponse ListApiTokens(Call& call);
HttpResponse RevokeApiToken(Call& call);

// admin_enrollment_tokens.cc
HttpResponse CreateEnrollmentTokens(Call& call);
HttpResponse ListEnrollmentTokens(Call& call);
HttpResponse RevokeEnrollmentToken(Call& call);

// admin_assessments.cc. The upload is answered when the worker's assessment pool has finished.
void UploadAssessment(Call& call, net::Responder respond);
HttpResponse ListAssessments(Call& call);
HttpResponse GetAssessment(Call& call);

// admin_compliance.cc
HttpResponse FleetComplianceView(Call& call);
// Computes the fleet's compliance again and keeps it as the stored summary, unless the one stored
// is of the current bundle and younger than `older_than_seconds` (then another worker or node just
// did). `context` is a reader thread's, with its store, fleet store and latest bundle.
Status RefreshStoredCompliance(const WorkerContext& context, int64_t older_than_seconds);
HttpResponse RuleComplianceView(Call& call);
HttpResponse DeviceComplianceView(Call& call);
// admin_mdm.cc
HttpResponse MdmStatusView(Call& call);

// admin_bundles.cc
HttpResponse Publish(Call& call);
HttpResponse LatestBundle(Call& call);

// admin_audit.cc
HttpResponse ReadAuditLog(Call& call);
HttpResponse VerifyAuditLog(Call& call);

// admin_exports.cc: CSV for spreadsheets
HttpResponse ExportDevicesCsv(Call& call);
HttpResponse ExportComplianceCsv(Call& call);
HttpResponse ExportAuditCsv(Call& call);

}  // namespace appban::server::admin
