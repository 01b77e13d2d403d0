//! What a report says: its test cases, as reported, and a summary.

/// How one `<testcase>` ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Outcome {
    Passed,
    /// A `<failure>`: an assertion did not hold.
    Failed,
    /// An `<error>`: the test broke before it could assert.
    Errored,
    /// `<skipped>`, or `status="skipped"`/`"disabled"`/`"notrun"`/`"ignored"` without a failure.
    Skipped,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Passed => "passed",
            Outcome::Failed => "failed",
            Outcome::Errored => "errored",
            Outcome::Skipped => "skipped",
        }
    }

    /// Failed or errored.
    pub fn is_bad(self) -> bool {
        matches!(self, Outcome::Failed | Outcome::Errored)
    }
}

/// The first `<failure>` or `<error>` of a test case.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Problem {
    /// Its `type` attribute (an exception class, say).
    pub kind: String,
    pub message: String,
    /// Its text (a stack trace, an assertion's output), cut at [`Limits::max_text_bytes`].
    pub text: String,
}

/// One `<testcase>` element as the report has it. A test run several times in one report
/// (retries written as separate cases) is several of these; a retry written inside the case
/// (pytest-rerunfailures' `<rerun>`, Surefire's `<flakyFailure>`, `<flakyError>`,
/// `<rerunFailure>`, `<rerunError>`) counts in [`TestCase::reruns`].
#[derive(Debug, Clone, PartialEq)]
pub struct TestCase {
    /// Its position among the report's test cases, from 0.
    pub index: u64,
    /// The name of the innermost `<testsuite>` around it.
    pub suite: String,
    /// Its `file` attribute, else the innermost suite's.
    pub file: String,
    pub classname: String,
    pub name: String,
    pub line: Option<i64>,
    /// Its `time` in seconds, when that is a number.
    pub time_s: Option<f64>,
    pub outcome: Outcome,
    pub problem: Option<Problem>,
    /// The `<skipped>` message (its attribute, else its text).
    pub skip_message: String,
    /// Failed attempts before the last one, reported inside the case.
    pub reruns: u32,
    /// The first of those attempts' messages.
    pub rerun_message: String,
    /// Whether a value of this case was cut at its limit.
    pub truncated: bool,
}

impl TestCase {
    pub(crate) fn empty() -> TestCase {
        TestCase {
            index: 0,
            suite: String::new(),
            file: String::new(),
            classname: String::new(),
            name: String::new(),
            line: None,
            time_s: None,
            outcome: Outcome::Passed,
            problem: None,
            skip_message: String::new(),
            reruns: 0,
            rerun_message: String::new(),
            truncated: false,
        }
    }

    /// Ready for case `index`, keeping the strings' memory.
    pub(crate) fn reset(&mut self, index: u64) {
        self.index = index;
        self.suite.clear();
        self.file.clear();
        self.classname.clear();
        self.name.clear();
        self.line = None;
        self.time_s = None;
        self.outcome = Outcome::Passed;
        // Few cases fail: a problem's strings are not worth keeping for the next case.
        self.problem = None;
        self.skip_message.clear();
        self.reruns = 0;
        self.rerun_message.clear();
        self.truncated = false;
    }
}

/// What a whole report held.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Summary {
    pub cases: u64,
    pub passed: u64,
    pub failed: u64,
    pub errored: u64,
    pub skipped: u64,
    /// Cases with at least one rerun inside.
    pub rerun: u64,
    pub suites: u64,
    /// The sum of the cases' times.
    pub time_s: f64,
    /// Cases with a value cut at its limit.
    pub truncated: u64,
    /// The report's size in bytes, as read.
    pub bytes: u64,
}

impl Summary {
    pub(crate) fn count(&mut self, case: &TestCase) {
        self.cases += 1;
        match case.outcome {
            Outcome::Passed => self.passed += 1,
            Outcome::Failed => self.failed += 1,
            Outcome::Errored => self.errored += 1,
            Outcome::Skipped => self.skipped += 1,
        }
        if case.reruns > 0 {
            self.rerun += 1;
        }
        if case.truncated {
            self.truncated += 1;
        }
        self.time_s += case.time_s.unwrap_or(0.0);
    }
}

/// How much of a value is kept; a report's values past these are cut (and the case flagged),
/// so a report's size never decides how much memory a case takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// A failure's or error's text.
    pub max_text_bytes: usize,
    /// A message, a type, a name, a class name, a file.
    pub max_value_bytes: usize,
    /// Nesting of elements.
    pub max_depth: usize,
    /// One XML node — a text, a CDATA section, a comment — is read at most this far; the rest
    /// of it is skipped unread. A tag longer than this is refused.
    pub max_node_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_text_bytes: 16 * 1024,
            max_value_bytes: 2 * 1024,
            max_depth: 64,
            max_node_bytes: 1024 * 1024,
        }
    }
}
