package dev.qwtonnx.pass;

/**
 * Why a pass left a candidate as it was: a value the pass returns and {@link Pipeline} logs and
 * hands on, rather than a skipped loop iteration that no one sees.
 *
 * @param pass    the name of the pass that looked at the candidate
 * @param subject the node or tensor left, described for people (e.g. {@code Nodes.describe})
 * @param reason  the check it failed, as a clause ("the bias is read by another node")
 */
public record Rejection(String pass, String subject, String reason) {
    /** The form the pipeline logs: {@code PASS: left SUBJECT: REASON}. */
    @Override
    public String toString() {
        return pass + ": left " + subject + ": " + reason;
    }
}
