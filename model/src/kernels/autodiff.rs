//! [`RestoraBackend`] for `Autodiff<B>`: each operation is one node of the graph whose backward
//! calls the inner backend's gradient kernels (as `burn-autodiff`'s own conv2d does, with `B`'s
//! kernels in place of Burn's transposed and per-group convolutions). Layer norm, the GELU gate
//! and the channel attention become nodes only where `B` has kernels for them; elsewhere they
//! are Burn ops on `Autodiff<B>`, differentiated by Burn.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::autodiff::NodeId;
use burn::backend::Autodiff;
use burn::tensor::ops::FloatTensor;

use super::{
    channel_attention_with_burn, gelu_gate_with_burn, layer_norm_with_burn, pointwise_with_burn, RestoraBackend, Wanted,
};

/// The backward of one 3×3 convolution: which of the two kinds, and its saved inputs.
#[derive(Debug)]
struct Conv3x3Backward {
    depthwise: bool,
}

impl<B: RestoraBackend> Backward<B, 2> for Conv3x3Backward {
    type State = (NodeId, NodeId);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, checkpointer: &mut Checkpointer) {
        let [node_x, node_weight] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        let (x_state, weight_state) = ops.state;
        let x = checkpointer.retrieve_node_output::<FloatTensor<B>>(x_state);
        let weight = checkpointer.retrieve_node_output::<FloatTensor<B>>(weight_state);
        let wanted = Wanted { x: node_x.is_some(), weight: node_weight.is_some() };
        let (grad_x, grad_weight) = if self.depthwise {
            B::depthwise_conv3x3_backward(x, weight, grad, wanted)
        } else {
            B::conv3x3_backward(x, weight, grad, wanted)
        };
        if let (Some(node), Some(g)) = (node_x, grad_x) {
            grads.register::<B>(node.id, g);
        }
        if let (Some(node), Some(g)) = (node_weight, grad_weight) {
            grads.register::<B>(node.id, g);
        }
    }
}

fn record<B: RestoraBackend, C: CheckpointStrategy>(
    depthwise: bool,
    x: FloatTensor<Autodiff<B, C>>,
    weight: FloatTensor<Autodiff<B, C>>,
) -> FloatTensor<Autodiff<B, C>> {
    let forward = |x, weight| if depthwise { B::depthwise_conv3x3(x, weight) } else { B::conv3x3(x, weight) };
    let backward = Conv3x3Backward { depthwise };
    match backward.prepare::<C>([x.node.clone(), weight.node.clone()]).compute_bound().stateful() {
        OpsKind::Tracked(mut prep) => {
            let x_state = prep.checkpoint(&x);
            let weight_state = prep.checkpoint(&weight);
            prep.finish((x_state, weight_state), forward(x.primitive, weight.primitive))
        }
        OpsKind::UnTracked(prep) => prep.finish(forward(x.primitive, weight.primitive)),
    }
}

/// The backward of a 1×1 convolution with (`N` = 3) or without (`N` = 2) a bias.
#[derive(Debug)]
struct PointwiseBackward;

impl<B: RestoraBackend, const N: usize> Backward<B, N> for PointwiseBackward {
    type State = (NodeId, NodeId);

    fn backward(self, ops: Ops<Self::State, N>, grads: &mut Gradients, checkpointer: &mut Checkpointer) {
        let (grad, x, weight) = grad_and_saved::<B, N>(&ops, grads, checkpointer);
        let wanted = Wanted { x: ops.parents[0].is_some(), weight: ops.parents[1].is_some() };
        let bias = N == 3 && ops.parents[N - 1].is_some();
        let (grad_x, grad_weight, grad_bias) = B::pointwise_conv_backward(x, weight, grad, wanted, bias);
        register::<B, N>(
            ops.parents.each_ref().map(|p| p.as_ref().map(|node| node.id)),
            [grad_x, grad_weight, grad_bias],
            grads,
        );
    }
}

/// The backward of a channel layer norm with (`N` = 3) or without (`N` = 2) a bias.
#[derive(Debug)]
struct LayerNormBackward {
    epsilon: f64,
}

impl<B: RestoraBackend, const N: usize> Backward<B, N> for LayerNormBackward {
    type State = (NodeId, NodeId);

    fn backward(self, ops: Ops<Self::State, N>, grads: &mut Gradients, checkpointer: &mut Checkpointer) {
        let (grad, x, weight) = grad_and_saved::<B, N>(&ops, grads, checkpointer);
        let (grad_x, grad_weight, grad_bias) = B::channel_layer_norm_backward(x, weight, N == 3, self.epsilon, grad);
        register::<B, N>(
            ops.parents.each_ref().map(|p| p.as_ref().map(|node| node.id)),
            [Some(grad_x), Some(grad_weight), grad_bias],
            grads,
        );
    }
}

/// The upstream gradient of a node that saved its `x` and `weight`, and those two.
fn grad_and_saved<B: RestoraBackend, const N: usize>(
    ops: &Ops<(NodeId, NodeId), N>,
    grads: &mut Gradients,
    checkpointer: &mut Checkpointer,
) -> (FloatTensor<B>, FloatTensor<B>, FloatTensor<B>) {
    let grad = grads.consume::<B>(&ops.node);
    let (x_state, weight_state) = ops.state;
    let x = checkpointer.retrieve_node_output::<FloatTensor<B>>(x_state);
    let weight = checkpointer.retrieve_node_output::<FloatTensor<B>>(weight_state);
    (grad, x, weight)
}

/// Registers each computed gradient with its tracked parent (`x`, `weight`, then the bias if any).
fn register<B: RestoraBackend, const N: usize>(
    parents: [Option<NodeId>; N],
    computed: [Option<FloatTensor<B>>; 3],
    grads: &mut Gradients,
) {
    for (parent, grad) in parents.into_iter().zip(computed) {
        if let (Some(id), Some(g)) = (parent, grad) {
            grads.register::<B>(id, g);
        }
    }
}

/// The backward of MDTA's channel attention; the valid weights ride along as data.
#[derive(Debug)]
struct ChannelAttentionBackward {
    heads: usize,
    epsilon: f32,
}

impl<B: RestoraBackend> Backward<B, 2> for ChannelAttentionBackward {
    type State = (NodeId, NodeId, Option<FloatTensor<B>>);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, checkpointer: &mut Checkpointer) {
        let grad = grads.consume::<B>(&ops.node);
        let (qkv_state, temperature_state, valid) = ops.state;
        let qkv = checkpointer.retrieve_node_output::<FloatTensor<B>>(qkv_state);
        let temperature = checkpointer.retrieve_node_output::<FloatTensor<B>>(temperature_state);
        let (grad_qkv, grad_temperature) =
            B::channel_attention_backward(qkv, temperature, valid, self.heads, self.epsilon, grad);
        let [node_qkv, node_temperature] = ops.parents;
        register::<B, 2>(
            [node_qkv.map(|node| node.id), node_temperature.map(|node| node.id)],
            [Some(grad_qkv), Some(grad_temperature), None],
            grads,
        );
    }
}

/// The backward of the GDFN gate.
#[derive(Debug)]
struct GeluGateBackward;

impl<B: RestoraBackend> Backward<B, 1> for GeluGateBackward {
    type State = NodeId;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, checkpointer: &mut Checkpointer) {
        let grad = grads.consume::<B>(&ops.node);
        let x = checkpointer.retrieve_node_output::<FloatTensor<B>>(ops.state);
        if let [Some(node)] = ops.parents {
            grads.register::<B>(node.id, B::gelu_gate_backward(x, grad));
        }
    }
}

/// One node for a one-input kernel whose backward needs only that input.
fn record_unary<B: RestoraBackend, C: CheckpointStrategy, O: Backward<B, 1, State = NodeId>>(
    backward: O,
    x: FloatTensor<Autodiff<B, C>>,
    forward: impl FnOnce(FloatTensor<B>) -> FloatTensor<B>,
) -> FloatTensor<Autodiff<B, C>> {
    match backward.prepare::<C>([x.node.clone()]).compute_bound().stateful() {
        OpsKind::Tracked(mut prep) => {
            let state = prep.checkpoint(&x);
            prep.finish(state, forward(x.primitive))
        }
        OpsKind::UnTracked(prep) => prep.finish(forward(x.primitive)),
    }
}

/// One node for an operation on `x`, `weight` and an optional `bias` (a node of 3 or 2 parents)
/// whose backward needs `x` and `weight`.
fn record_with_bias<B, C, O>(
    backward: O,
    x: FloatTensor<Autodiff<B, C>>,
    weight: FloatTensor<Autodiff<B, C>>,
    bias: Option<FloatTensor<Autodiff<B, C>>>,
    forward: impl FnOnce(FloatTensor<B>, FloatTensor<B>, Option<FloatTensor<B>>) -> FloatTensor<B>,
) -> FloatTensor<Autodiff<B, C>>
where
    B: RestoraBackend,
    C: CheckpointStrategy,
    O: Backward<B, 2, State = (NodeId, NodeId)> + Backward<B, 3, State = (NodeId, NodeId)>,
{
    let Some(bias) = bias else {
        return match Backward::<B, 2>::prepare::<C>(backward, [x.node.clone(), weight.node.clone()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let state = (prep.checkpoint(&x), prep.checkpoint(&weight));
                prep.finish(state, forward(x.primitive, weight.primitive, None))
            }
            OpsKind::UnTracked(prep) => prep.finish(forward(x.primitive, weight.primitive, None)),
        };
    };
    match Backward::<B, 3>::prepare::<C>(backward, [x.node.clone(), weight.node.clone(), bias.node.clone()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(mut prep) => {
            let state = (prep.checkpoint(&x), prep.checkpoint(&weight));
            prep.finish(state, forward(x.primitive, weight.primitive, Some(bias.primitive)))
        }
        OpsKind::UnTracked(prep) => prep.finish(forward(x.primitive, weight.primitive, Some(bias.primitive))),
    }
}

impl<B: RestoraBackend, C: CheckpointStrategy> RestoraBackend for Autodiff<B, C> {
    fn depthwise_conv3x3(x: FloatTensor<Self>, weight: FloatTensor<Self>) -> FloatTensor<Self> {
        record::<B, C>(true, x, weight)
    }

    fn conv3x3(x: FloatTensor<Self>, weight: FloatTensor<Self>) -> FloatTensor<Self> {
        record::<B, C>(false, x, weight)
    }

    fn pointwise_conv(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: Option<FloatTensor<Self>>,
    ) -> FloatTensor<Self> {
        if !B::FUSED_KERNELS {
            return pointwise_with_burn::<Self>(x, weight, bias);
        }
        record_with_bias::<B, C, _>(PointwiseBackward, x, weight, bias, B::pointwise_conv)
    }

    fn channel_layer_norm(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: Option<FloatTensor<Self>>,
        epsilon: f64,
    ) -> FloatTensor<Self> {
        if !B::FUSED_KERNELS {
            return layer_norm_with_burn::<Self>(x, weight, bias, epsilon);
        }
        record_with_bias::<B, C, _>(LayerNormBackward { epsilon }, x, weight, bias, |x, weight, bias| {
            B::channel_layer_norm(x, weight, bias, epsilon)
        })
    }

    fn channel_attention(
        qkv: FloatTensor<Self>,
        temperature: FloatTensor<Self>,
        valid: Option<FloatTensor<Self>>,
        heads: usize,
        epsilon: f32,
    ) -> FloatTensor<Self> {
        if !B::FUSED_KERNELS {
            return channel_attention_with_burn::<Self>(qkv, temperature, valid, heads, epsilon);
        }
        // The mask is data, not a parameter: its weights enter untracked.
        let valid = valid.map(|v| v.primitive);
        let backward = ChannelAttentionBackward { heads, epsilon };
        let forward = |qkv, temperature, valid| B::channel_attention(qkv, temperature, valid, heads, epsilon);
        match backward.prepare::<C>([qkv.node.clone(), temperature.node.clone()]).compute_bound().stateful() {
            OpsKind::Tracked(mut prep) => {
                let state = (prep.checkpoint(&qkv), prep.checkpoint(&temperature), valid.clone());
                prep.finish(state, forward(qkv.primitive, temperature.primitive, valid))
            }
            OpsKind::UnTracked(prep) => prep.finish(forward(qkv.primitive, temperature.primitive, valid)),
        }
    }

    fn gelu_gate(x: FloatTensor<Self>) -> FloatTensor<Self> {
        if !B::FUSED_KERNELS {
            return gelu_gate_with_burn::<Self>(x);
        }
        record_unary::<B, C, _>(GeluGateBackward, x, B::gelu_gate)
    }
}
