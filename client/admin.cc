#include "runnel/admin.h"

#include <utility>

#include "absl/strings/str_cat.h"

#include "client/rpc.h"
#include "common/status_macros.h"

namespace runnel::client {

// Stateless apart from the channel. Thread-safe.
class Admin::Impl {
 public:
  explicit Impl(AdminOptions options) : options_(std::move(options)) {}

  template <typename Request, typename Response, typename Method>
  absl::Status Call(Method method, const Request& request, Response* response,
                    const char* what) {
    grpc::ClientContext ctx;
    ctx.set_deadline(DeadlineAfterMs(options_.request_timeout_ms));
    v1::Admin::Stub* stub = pool_.Admin(options_.bootstrap);
    grpc::Status s = (stub->*method)(&ctx, request, response);
    return RpcToStatus(s, absl::StrCat(what, " via ", options_.bootstrap));
  }

  // The first failed topic's error.
  template <typename Response>
  static absl::Status FirstError(const Response& response) {
    for (const v1::TopicResult& t : response.topics()) {
      RUNNEL_RETURN_IF_ERROR(
          ErrorToStatus(t.error(), absl::StrCat("topic ", t.name())));
    }
    return absl::OkStatus();
  }

  const AdminOptions options_;
  ChannelPool pool_;
};

absl::StatusOr<std::unique_ptr<Admin>> Admin::Create(AdminOptions options) {
  if (options.bootstrap.empty()) {
    return absl::InvalidArgumentError("bootstrap address is empty");
  }
  return std::unique_ptr<Admin>(
      new Admin(std::make_unique<Impl>(std::move(options))));
}

Admin::Admin(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Admin::~Admin() = default;

absl::Status Admin::CreateTopic(const NewTopic& topic) {
  v1::CreateTopicsRequest request;
  v1::NewTopic* t = request.add_topics();
  t->set_name(topic.name);
  t->set_num_partitions(topic.num_partitions);
  t->set_replication_factor(topic.replication_factor);
  for (const auto& [k, v] : topic.configs) (*t->mutable_configs())[k] = v;
  v1::CreateTopicsResponse response;
  RUNNEL_RETURN_IF_ERROR(impl_->Call(&v1::Admin::Stub::CreateTopics, request,
                                     &response, "create topic"));
  return Impl::FirstError(response);
}

absl::Status Admin::DeleteTopic(const std::string& name) {
  v1::DeleteTopicsRequest request;
  request.add_names(name);
  v1::DeleteTopicsResponse response;
  RUNNEL_RETURN_IF_ERROR(impl_->Call(&v1::Admin::Stub::DeleteTopics, request,
                                     &response, "delete topic"));
  return Impl::FirstError(response);
}

absl::StatusOr<std::vector<TopicDescription>> Admin::DescribeTopics(
    const std::vector<std::string>& names) {
  v1::DescribeTopicsRequest request;
  for (const std::string& n : names) request.add_names(n);
  v1::DescribeTopicsResponse response;
  RUNNEL_RETURN_IF_ERROR(impl_->Call(&v1::Admin::Stub::DescribeTopics, request,
                                     &response, "describe topics"));
  std::vector<TopicDescription> out;
  for (const v1::TopicDescription& t : response.topics()) {
    RUNNEL_RETURN_IF_ERROR(
        ErrorToStatus(t.error(), absl::StrCat("topic ", t.name())));
    TopicDescription d;
    d.name = t.name();
    d.replication_factor = t.replication_factor();
    d.is_internal = t.is_internal();
    for (const v1::PartitionDescription& p : t.partitions()) {
      PartitionDescription pd;
      pd.partition = p.partition();
      pd.leader_id = p.leader_id();
      pd.leader_epoch = p.leader_epoch();
      pd.replicas.assign(p.replicas().begin(), p.replicas().end());
      pd.isr.assign(p.isr().begin(), p.isr().end());
      pd.log_start_offset = p.log_start_offset();
      pd.high_watermark = p.high_watermark();
      pd.log_end_offset = p.log_end_offset();
      pd.size_bytes = p.size_bytes();
      d.partitions.push_back(std::move(pd));
    }
    for (const v1::ConfigEntry& c : t.configs()) {
      d.configs[c.name()] = ConfigValue{c.value(), c.is_default()};
    }
    out.push_back(std::move(d));
  }
  return out;
}

absl::StatusOr<std::vector<TopicListing>> Admin::ListTopics(
    bool include_internal) {
  v1::ListTopicsRequest request;
  request.set_include_internal(include_internal);
  v1::ListTopicsResponse response;
  RUNNEL_RETURN_IF_ERROR(impl_->Call(&v1::Admin::Stub::ListTopics, request,
                                     &response, "list topics"));
  std::vector<TopicListing> out;
  for (const v1::TopicListing& t : response.topics()) {
    out.push_back(TopicListing{t.name(), t.num_partitions(), t.is_internal()});
  }
  return out;
}

absl::Status Admin::AlterTopicConfigs(
    const std::string& name, const std::map<std::string, std::string>& set,
    const std::vector<std::string>& reset) {
  v1::AlterTopicConfigsRequest request;
  v1::TopicConfigChanges* changes = request.add_topics();
  changes->set_name(name);
  for (const auto& [k, v] : set) {
    v1::ConfigOp* op = changes->add_ops();
    op->set_op(v1::CONFIG_OP_SET);
    op->set_name(k);
    op->set_value(v);
  }
  for (const std::string& k : reset) {
    v1::ConfigOp* op = changes->add_ops();
    op->set_op(v1::CONFIG_OP_DELETE);
    op->set_name(k);
  }
  v1::AlterTopicConfigsResponse response;
  RUNNEL_RETURN_IF_ERROR(impl_->Call(&v1::Admin::Stub::AlterTopicConfigs,
                                     request, &response, "alter configs"));
  return Impl::FirstError(response);
}

absl::Status Admin::CreatePartitions(const std::string& name,
                                     int32_t total_count) {
  v1::CreatePartitionsRequest request;
  v1::PartitionsIncrease* inc = request.add_topics();
  inc->set_name(name);
  inc->set_total_count(total_count);
  v1::CreatePartitionsResponse response;
  RUNNEL_RETURN_IF_ERROR(impl_->Call(&v1::Admin::Stub::CreatePartitions,
                                     request, &response, "create partitions"));
  return Impl::FirstError(response);
}

}  // namespace runnel::client
