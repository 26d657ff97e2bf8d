"""The 95 actions the API document names, with their host and group, and the document's typos.

This list is data from the document's headings; which of them openccs implements is decided
by the action registry (`openccs.api.registry`).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CatalogEntry:
    name: str
    host: str
    group: str
    title: str


_ENTRIES: list[tuple[str, str, str, str]] = [
    ("CreateCluster", "ccs.api.qcloud.com", "cluster", "创建集群"),
    ("CreateEmptyCluster", "ccs.api.qcloud.com", "cluster", "创建空集群"),
    ("CheckClusterCIDR", "ccs.api.qcloud.com", "cluster", "校验 CIDR"),
    ("AddClusterInstances", "ccs.api.qcloud.com", "cluster", "扩展集群节点"),
    (
        "AddClusterInstancesFromExistedCvm",
        "ccs.api.qcloud.com",
        "cluster",
        "添加已存在云主机到集群",
    ),
    (
        "DescribeExistedCvmForAddClusterInstances",
        "ccs.api.qcloud.com",
        "cluster",
        "查询加入集群的主机列表",
    ),
    ("DescribeCluster", "ccs.api.qcloud.com", "cluster", "查询集群列表"),
    ("DescribeClusterInstances", "ccs.api.qcloud.com", "cluster", "查询集群节点列表"),
    (
        "DescribeClusterRequestLimitInfo",
        "ccs.api.qcloud.com",
        "cluster",
        "查询集群 Request 和 Limit 信息",
    ),
    ("DescribeClusterSecurityInfo", "ccs.api.qcloud.com", "cluster", "获取集群外网访问凭据"),
    ("ModifyClusterNodeLabel", "ccs.api.qcloud.com", "cluster", "修改节点Label"),
    ("ModifyClusterAttributes", "ccs.api.qcloud.com", "cluster", "修改集群属性"),
    ("ModifyProjectId", "ccs.api.qcloud.com", "cluster", "修改集群所属项目"),
    ("ModifyNamespaceDescription", "ccs.api.qcloud.com", "cluster", "修改集群命名空间描述"),
    ("DrainClusterNode", "ccs.api.qcloud.com", "cluster", "驱逐集群节点"),
    ("ModifyClusterNodeSchedulable", "ccs.api.qcloud.com", "cluster", "设置集群节点为是否可调度"),
    ("OperateClusterVip", "ccs.api.qcloud.com", "cluster", "操作集群外网访问地址"),
    ("AddHubInfo", "ccs.api.qcloud.com", "cluster", "添加第三方私有镜像仓库"),
    ("DescribeHubInfo", "ccs.api.qcloud.com", "cluster", "查询集群第三方镜像仓库"),
    ("DeleteClusterInstances", "ccs.api.qcloud.com", "cluster", "删除集群节点"),
    ("DeleteCluster", "ccs.api.qcloud.com", "cluster", "删除集群"),
    ("CreateClusterAsg", "ccs.api.qcloud.com", "asg", "创建集群伸缩组"),
    ("EnableClusterAsg", "ccs.api.qcloud.com", "asg", "启用集群伸缩组"),
    ("DescribeClusterAsg", "ccs.api.qcloud.com", "asg", "查询集群伸缩组列表"),
    ("ModifyClusterAsgScaleDown", "ccs.api.qcloud.com", "asg", "修改集群伸缩组是否启用缩容"),
    ("ModifyClusterAsgRange", "ccs.api.qcloud.com", "asg", "修改集群伸缩组的最大最小值及 label"),
    ("ModifyClusterAsgLabel", "ccs.api.qcloud.com", "asg", "修改集群伸缩组 label"),
    ("ResetClusterAsgLabel", "ccs.api.qcloud.com", "asg", "重置集群伸缩组 label"),
    ("DisableClusterAsg", "ccs.api.qcloud.com", "asg", "停用集群伸缩组"),
    ("DeleteClusterAsgLabel", "ccs.api.qcloud.com", "asg", "删除集群伸缩组 label"),
    ("DeleteClusterAsg", "ccs.api.qcloud.com", "asg", "删除集群伸缩组"),
    ("CreateClusterService", "ccs.api.qcloud.com", "service", "创建服务"),
    ("DescribeClusterService", "ccs.api.qcloud.com", "service", "查询服务列表"),
    ("DescribeClusterServiceInfo", "ccs.api.qcloud.com", "service", "查询服务详情"),
    ("DescribeServiceEvent", "ccs.api.qcloud.com", "service", "获取服务事件列表"),
    ("DescribeClusterServiceText", "ccs.api.qcloud.com", "service", "获取服务的 yaml 文本信息"),
    ("ModifyClusterService", "ccs.api.qcloud.com", "service", "修改服务"),
    ("ModifyServiceDescription", "ccs.api.qcloud.com", "service", "修改服务描述"),
    ("ModifyClusterServiceImage", "ccs.api.qcloud.com", "service", "修改服务镜像"),
    ("ModifyServiceLabels", "ccs.api.qcloud.com", "service", "修改服务的标签 (Label) 信息"),
    ("RollBackClusterService", "ccs.api.qcloud.com", "service", "回滚服务"),
    ("RedeployClusterService", "ccs.api.qcloud.com", "service", "服务重部署"),
    ("PauseClusterService", "ccs.api.qcloud.com", "service", "暂停服务更新"),
    ("ResumeClusterService", "ccs.api.qcloud.com", "service", "继续服务更新"),
    ("DeleteClusterService", "ccs.api.qcloud.com", "service", "删除服务"),
    ("DescribeServiceInstance", "ccs.api.qcloud.com", "instance", "查询服务实例列表"),
    ("ModifyServiceReplicas", "ccs.api.qcloud.com", "instance", "修改服务实例副本数"),
    ("DescribeInstanceLog", "ccs.api.qcloud.com", "instance", "获取服务实例日志"),
    ("DeleteInstances", "ccs.api.qcloud.com", "instance", "删除服务实例"),
    ("DescribeClusterNameSpaces", "ccs.api.qcloud.com", "namespace", "查询集群命名空间"),
    ("CreateClusterNamespace", "ccs.api.qcloud.com", "namespace", "创建集群命名空间"),
    ("DeleteClusterNamespace", "ccs.api.qcloud.com", "namespace", "删除集群命名空间"),
    ("CreateIngress", "ccs.api.qcloud.com", "ingress", "创建 Ingress"),
    ("DescribeIngress", "ccs.api.qcloud.com", "ingress", "查询 Ingress 列表"),
    ("ModifyIngress", "ccs.api.qcloud.com", "ingress", "修改 Ingress"),
    ("DeleteIngress", "ccs.api.qcloud.com", "ingress", "删除Ingress"),
    ("GetLogDaemonStatus", "ccs.api.qcloud.com", "log", "启用集群日志收集服务"),
    ("CreateLogCollector", "ccs.api.qcloud.com", "log", "创建集群日志收集规则"),
    ("ListLogCollector", "ccs.api.qcloud.com", "log", "列出日志收集规则"),
    ("UpdateLogCollector", "ccs.api.qcloud.com", "log", "更新日志收集规则"),
    ("GetLogCollector", "ccs.api.qcloud.com", "log", "获取日志收集器信息"),
    ("CheckIfLogCollectorName", "ccs.api.qcloud.com", "log", "检查日志收集器名称"),
    ("DeleteLogCollector", "ccs.api.qcloud.com", "log", "删除日志收集规则"),
    ("GetMonitorData", "monitor.api.qcloud.com", "monitor", "查询容器服务监控信息"),
    ("CreateRepository", "ccr.api.qcloud.com", "registry", "创建镜像仓库"),
    ("BatchDeleteRepository", "ccr.api.qcloud.com", "registry", "批量删除仓库"),
    ("GetRepositoryInfo", "ccr.api.qcloud.com", "registry", "查询镜像仓库信息"),
    ("RepositoryIsExists", "ccr.api.qcloud.com", "registry", "镜像仓库是否存在"),
    ("GetRepositoryList", "ccr.api.qcloud.com", "registry", "查询 Tencent Hub 仓库列表"),
    ("UpdateRepositoryDesc", "ccr.api.qcloud.com", "registry", "更改镜像仓库描述内容"),
    ("UpdateRepositoryPublic", "ccr.api.qcloud.com", "registry", "更改镜像仓库访问属性"),
    ("GetTagList", "ccr.api.qcloud.com", "registry", "获取 tag 列表"),
    ("BatchDeleteTag", "ccr.api.qcloud.com", "registry", "批量删除 tag"),
    ("DuplicateImage", "ccr.api.qcloud.com", "registry", "复制镜像版本"),
    ("SetAutoDelStrategy", "ccr.api.qcloud.com", "registry", "设置仓库 tag 超额保留策略"),
    ("GetAutoDelStrategy", "ccr.api.qcloud.com", "registry", "获取仓库 tag 超额保留策略"),
    ("CloseAutoDelStrategy", "ccr.api.qcloud.com", "registry", "关闭仓库 tag 超额保留策略"),
    ("AddUpdateServiceTrigger", "ccr.api.qcloud.com", "registry", "添加触发器"),
    ("ListTrigger", "ccr.api.qcloud.com", "registry", "获取触发器"),
    ("DeleteUpdateServiceTrigger", "ccr.api.qcloud.com", "registry", "删除触发器"),
    ("ModifyUpdateServiceTrigger", "ccr.api.qcloud.com", "registry", "修改服务更新触发器"),
    ("ChangePassword", "ccr.api.qcloud.com", "registry", "修改密码"),
    ("GetLimit", "ccr.api.qcloud.com", "registry", "查询用户配额"),
    ("SearchUserRepository", "ccr.api.qcloud.com", "registry", "查询用户仓库列表"),
    ("AddFavor", "ccr.api.qcloud.com", "registry", "添加收藏"),
    ("DeleteFavor", "ccr.api.qcloud.com", "registry", "取消收藏"),
    ("CreateCCRNamespace", "ccr.api.qcloud.com", "registry", "创建命名空间"),
    ("GetNamespaceInfo", "ccr.api.qcloud.com", "registry", "查询命名空间"),
    ("NamespaceIsExists", "ccr.api.qcloud.com", "registry", "查询命名空间是否存在"),
    ("DeleteUserNamespace", "ccr.api.qcloud.com", "registry", "删除命名空间"),
    ("GetFavor", "ccr.api.qcloud.com", "registry", "获取收藏列表"),
    ("ListTriggerLog", "ccr.api.qcloud.com", "registry", "获取触发记录"),
    (
        "RegisterRepositoryAccountNew",
        "ccr.api.qcloud.com",
        "registry",
        "用户注册（无需指定 Namespace）",
    ),
    ("BatchDeleteFavor", "ccr.api.qcloud.com", "registry", "批量删除收藏仓库"),
    ("DescribeClusterTaskResult", "ccs.api.qcloud.com", "task", "查询异步任务结果"),
]

CATALOG: dict[str, CatalogEntry] = {e[0]: CatalogEntry(*e) for e in _ENTRIES}

# Spellings from the document's examples and overview that clients may have copied.
ALIASES: dict[str, str] = {
    "Createlngress": "CreateIngress",
    "MosifyIngress": "ModifyIngress",
    "NamespacelsExists": "NamespaceIsExists",
    "NamespacsExists": "NamespaceIsExists",
    "RepositoryExists": "RepositoryIsExists",
    "DescribeClusterContainer": "DescribeServiceInstance",
    "TencentHub": "GetRepositoryList",
}
