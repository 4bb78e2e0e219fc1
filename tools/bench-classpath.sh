# Sourced by the bench scripts: compiles the tests and sets $benchcp to a snapshot of the compiled
# classes plus the test classpath (a rebuild while a bench runs must not pull classes from under it).
mvn -B -q test-compile
# Written to a file: on stdout Maven's colour codes would stick to the last classpath entry.
mvn -B -q -Dstyle.color=never dependency:build-classpath -Dmdep.includeScope=test -Dmdep.outputFile=target/bench.classpath
snap=$(mktemp -d)
trap 'rm -rf "$snap"' EXIT
cp -r target/classes target/test-classes "$snap"/
benchcp="$snap/test-classes:$snap/classes:$(cat target/bench.classpath)"
