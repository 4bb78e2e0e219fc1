package dev.qwtonnx.target;

/**
 * A node (or the model, or a graph input) that breaks a target's rule.
 *
 * @param node   the node's name; a graph input's name; "(model)" for model-wide rules
 * @param opType the node's op type; "input" for a graph input; "model" for model-wide rules
 * @param rule   the rule broken
 * @param detail what is wrong here, in one line
 */
public record Violation(String node, String opType, Rule rule, String detail) {
}
