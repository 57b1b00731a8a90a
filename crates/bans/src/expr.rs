//! A small evaluator for `bantime.formula` and `bantime.factor`.
//!
//! fail2ban evaluates these options as Python expressions. ferroban does not embed Python: it parses the
//! subset of Python's expression grammar that such formulas use, once, when the jail is configured, and
//! evaluates the parsed tree for each ban.
//!
//! # Supported language
//!
//! - Numbers: integers (`20`, `0x10`) and floats (`1.5`, `.5`, `2e3`); `True`, `False`.
//! - Names: `ban.Time` (alias `banTime`), `ban.Count` (alias `banCount`), `banFactor`, `math.e`, `math.pi`.
//! - Functions: `float`, `int`, `min`, `max`, `abs`, `round`, `math.exp`, `math.log` (one or two arguments),
//!   `math.log2`, `math.log10`, `math.sqrt`, `math.pow`, `math.floor`, `math.ceil`, `math.fabs`.
//! - Operators, loosest first, as in Python: `a if c else b`; `or`; `and`; `not`; comparisons
//!   `< <= > >= == !=` (chainable: `0 < x < 5`); `|`; `^`; `&`; `<< >>`; `+ -`; `* / // %`;
//!   unary `+ - ~`; `**` (right-associative, binds tighter than a unary minus on its left).
//!
//! Integer arithmetic stays integral as in Python (`/` always gives a float, `//` and `%` floor). Python's
//! integers are unbounded; here an integer result that does not fit in 64 bits continues as a float, which
//! keeps formulas such as `1 << ban.Count` meaningful for any count.
//!
//! Unknown names, unknown functions and wrong argument counts are reported when the formula is parsed, with
//! the column where they occur, so a misspelt formula fails at configuration time rather than at the first ban.

use std::fmt;

use thiserror::Error;

/// An error while parsing or evaluating an expression. Columns count characters from 1.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum ExprError {
    /// A character that starts no token.
    #[error("unexpected character {ch:?} at column {column} in {expr:?}")]
    UnexpectedChar {
        /// The offending character.
        ch: char,
        /// Its column.
        column: usize,
        /// The whole expression.
        expr: String,
    },
    /// A malformed number literal.
    #[error("invalid number {text:?} at column {column} in {expr:?}")]
    BadNumber {
        /// The literal as written.
        text: String,
        /// Its column.
        column: usize,
        /// The whole expression.
        expr: String,
    },
    /// The parser expected something else.
    #[error("syntax error at column {column} in {expr:?}: expected {expected}, found {found}")]
    Syntax {
        /// What the grammar allows here.
        expected: String,
        /// What was found.
        found: String,
        /// Its column.
        column: usize,
        /// The whole expression.
        expr: String,
    },
    /// A name the evaluator does not know.
    #[error(
        "unknown name {name:?} at column {column} in {expr:?} (known names: ban.Time, ban.Count, banTime, banCount, banFactor, math.e, math.pi)"
    )]
    UnknownName {
        /// The name as written (dotted names joined with `.`).
        name: String,
        /// Its column.
        column: usize,
        /// The whole expression.
        expr: String,
    },
    /// A function the evaluator does not know.
    #[error(
        "unknown function {name:?} at column {column} in {expr:?} (known functions: float, int, min, max, abs, round, math.exp, math.log, math.log2, math.log10, math.sqrt, math.pow, math.floor, math.ceil, math.fabs)"
    )]
    UnknownFunction {
        /// The name as written.
        name: String,
        /// Its column.
        column: usize,
        /// The whole expression.
        expr: String,
    },
    /// A known function called with the wrong number of arguments.
    #[error("{name}() at column {column} takes {expected} argument(s), {found} given, in {expr:?}")]
    Arity {
        /// The function.
        name: String,
        /// What it accepts, e.g. `"1"` or `"2 or more"`.
        expected: &'static str,
        /// How many were given.
        found: usize,
        /// Its column.
        column: usize,
        /// The whole expression.
        expr: String,
    },
    /// An operation that cannot be applied to its operands (e.g. a shift of a float).
    #[error("type error: {0}")]
    Type(String),
    /// Division or modulo by zero.
    #[error("division by zero")]
    DivisionByZero,
    /// A math function outside its domain or range (e.g. `math.log(0)`, `math.exp(1000)`).
    #[error("math error: {0}")]
    Math(String),
    /// The expression is longer than [`MAX_LEN`] characters or nests deeper than [`MAX_DEPTH`].
    #[error("expression too complex: {0}")]
    TooComplex(String),
    /// The result is not a finite number.
    #[error("expression result is not a finite number: {0}")]
    NotFinite(f64),
}

/// The longest expression accepted, in characters (fail2ban's formulas are well under 200).
pub const MAX_LEN: usize = 1000;

/// The deepest nesting of parentheses, unary operators and calls accepted.
pub const MAX_DEPTH: usize = 64;

/// A value during evaluation, following Python's numeric types.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value {
    /// A Python `int` that fits in 64 bits.
    Int(i64),
    /// A Python `float`.
    Float(f64),
    /// A Python `bool` (an `int` in arithmetic).
    Bool(bool),
}

impl Value {
    /// The value as a float.
    pub fn as_f64(self) -> f64 {
        match self {
            Value::Int(i) => i as f64,
            Value::Float(f) => f,
            Value::Bool(b) => f64::from(u8::from(b)),
        }
    }

    /// The value for a number that may be integral: `Int` when `f` is a whole number that fits, else `Float`.
    pub fn from_f64(f: f64) -> Value {
        if f.fract() == 0.0 && f.abs() < 9.0e15 {
            Value::Int(f as i64)
        } else {
            Value::Float(f)
        }
    }

    fn truthy(self) -> bool {
        match self {
            Value::Int(i) => i != 0,
            Value::Float(f) => f != 0.0,
            Value::Bool(b) => b,
        }
    }

    /// `Some(i)` for integers and booleans (Python treats `bool` as `int`).
    fn as_int(self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(i),
            Value::Bool(b) => Some(i64::from(b)),
            Value::Float(_) => None,
        }
    }

    fn type_name(self) -> &'static str {
        match self {
            Value::Int(_) => "int",
            Value::Float(_) => "float",
            Value::Bool(_) => "bool",
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Int(i) => write!(f, "{i}"),
            Value::Float(x) => write!(f, "{x:?}"),
            Value::Bool(true) => f.write_str("True"),
            Value::Bool(false) => f.write_str("False"),
        }
    }
}

/// The inputs a formula can read.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Inputs {
    /// `ban.Time` / `banTime`: the jail's base ban time in seconds.
    pub ban_time: Value,
    /// `ban.Count` / `banCount`: how often the id was banned before.
    pub ban_count: i64,
    /// `banFactor`: the value of `bantime.factor`.
    pub ban_factor: Value,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Var {
    BanTime,
    BanCount,
    BanFactor,
    MathE,
    MathPi,
}

impl Var {
    fn lookup(name: &str) -> Option<Var> {
        Some(match name {
            "ban.Time" | "banTime" => Var::BanTime,
            "ban.Count" | "banCount" => Var::BanCount,
            "banFactor" => Var::BanFactor,
            "math.e" => Var::MathE,
            "math.pi" => Var::MathPi,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Func {
    Float,
    Int,
    Min,
    Max,
    Abs,
    Round,
    Exp,
    Log,
    Log2,
    Log10,
    Sqrt,
    Pow,
    Floor,
    Ceil,
    Fabs,
}

impl Func {
    fn lookup(name: &str) -> Option<Func> {
        Some(match name {
            "float" => Func::Float,
            "int" => Func::Int,
            "min" => Func::Min,
            "max" => Func::Max,
            "abs" => Func::Abs,
            "round" => Func::Round,
            "math.exp" => Func::Exp,
            "math.log" => Func::Log,
            "math.log2" => Func::Log2,
            "math.log10" => Func::Log10,
            "math.sqrt" => Func::Sqrt,
            "math.pow" => Func::Pow,
            "math.floor" => Func::Floor,
            "math.ceil" => Func::Ceil,
            "math.fabs" => Func::Fabs,
            _ => return None,
        })
    }

    /// Accepted argument counts: (min, max, text for errors).
    fn arity(self) -> (usize, usize, &'static str) {
        match self {
            Func::Min | Func::Max => (2, usize::MAX, "2 or more"),
            Func::Log => (1, 2, "1 or 2"),
            Func::Pow => (2, 2, "2"),
            _ => (1, 1, "1"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    FloorDiv,
    Mod,
    Pow,
    Shl,
    Shr,
    BitAnd,
    BitOr,
    BitXor,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CmpOp {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum UnOp {
    Neg,
    Pos,
    Invert,
}

#[derive(Debug, Clone, PartialEq)]
enum Node {
    Const(Value),
    Var(Var),
    Unary(UnOp, Box<Node>),
    Binary(BinOp, Box<Node>, Box<Node>),
    Compare(Box<Node>, Vec<(CmpOp, Node)>),
    And(Box<Node>, Box<Node>),
    Or(Box<Node>, Box<Node>),
    Not(Box<Node>),
    IfElse {
        cond: Box<Node>,
        then: Box<Node>,
        otherwise: Box<Node>,
    },
    Call(Func, Vec<Node>),
}

/// A parsed expression, ready to be evaluated many times.
#[derive(Debug, Clone, PartialEq)]
pub struct Expr {
    source: String,
    root: Node,
}

impl Expr {
    /// Parses `source`. Names and functions are resolved now: an unknown one is an error here.
    pub fn parse(source: &str) -> Result<Expr, ExprError> {
        let len = source.chars().count();
        if len > MAX_LEN {
            return Err(ExprError::TooComplex(format!(
                "{len} characters, at most {MAX_LEN} allowed"
            )));
        }
        let tokens = lex(source)?;
        let mut p = Parser {
            src: source,
            tokens,
            pos: 0,
            depth: 0,
        };
        let root = p.test()?;
        p.expect_end()?;
        // Evaluation recurses over the tree: bound its height (a long `1+1+…` chain is as deep as it is long).
        let h = height(&root);
        if h > MAX_DEPTH {
            return Err(ExprError::TooComplex(format!(
                "{h} levels of operations, at most {MAX_DEPTH} allowed"
            )));
        }
        Ok(Expr {
            source: source.to_string(),
            root,
        })
    }

    /// The expression as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Whether the expression reads any of the ban inputs (a constant such as `bantime.factor` does not).
    pub fn is_constant(&self) -> bool {
        fn walk(n: &Node) -> bool {
            match n {
                Node::Const(_) => true,
                Node::Var(v) => matches!(v, Var::MathE | Var::MathPi),
                Node::Unary(_, a) | Node::Not(a) => walk(a),
                Node::Binary(_, a, b) | Node::And(a, b) | Node::Or(a, b) => walk(a) && walk(b),
                Node::Compare(a, rest) => walk(a) && rest.iter().all(|(_, n)| walk(n)),
                Node::IfElse {
                    cond,
                    then,
                    otherwise,
                } => walk(cond) && walk(then) && walk(otherwise),
                Node::Call(_, args) => args.iter().all(walk),
            }
        }
        walk(&self.root)
    }

    /// Evaluates the expression to a Python-like value.
    pub fn eval_value(&self, inputs: &Inputs) -> Result<Value, ExprError> {
        eval(&self.root, inputs)
    }

    /// Evaluates the expression to a finite float.
    pub fn eval(&self, inputs: &Inputs) -> Result<f64, ExprError> {
        let v = self.eval_value(inputs)?.as_f64();
        if v.is_finite() {
            Ok(v)
        } else {
            Err(ExprError::NotFinite(v))
        }
    }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

/// The height of the tree, computed without recursion.
fn height(root: &Node) -> usize {
    let mut max = 0;
    let mut stack = vec![(root, 1usize)];
    while let Some((n, h)) = stack.pop() {
        max = max.max(h);
        match n {
            Node::Const(_) | Node::Var(_) => {}
            Node::Unary(_, a) | Node::Not(a) => stack.push((a, h + 1)),
            Node::Binary(_, a, b) | Node::And(a, b) | Node::Or(a, b) => {
                stack.push((a, h + 1));
                stack.push((b, h + 1));
            }
            Node::Compare(a, rest) => {
                stack.push((a, h + 1));
                stack.extend(rest.iter().map(|(_, n)| (n, h + 1)));
            }
            Node::IfElse {
                cond,
                then,
                otherwise,
            } => {
                stack.push((cond, h + 1));
                stack.push((then, h + 1));
                stack.push((otherwise, h + 1));
            }
            Node::Call(_, args) => stack.extend(args.iter().map(|a| (a, h + 1))),
        }
    }
    max
}

// ---------------------------------------------------------------------------------------------------------
// Lexer

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Num(Value),
    /// An identifier; dotted access is handled by the parser.
    Ident(String),
    Op(&'static str),
    LParen,
    RParen,
    Comma,
    Dot,
    End,
}

impl Tok {
    fn describe(&self) -> String {
        match self {
            Tok::Num(v) => format!("number {v}"),
            Tok::Ident(s) => format!("{s:?}"),
            Tok::Op(o) => format!("{o:?}"),
            Tok::LParen => "\"(\"".into(),
            Tok::RParen => "\")\"".into(),
            Tok::Comma => "\",\"".into(),
            Tok::Dot => "\".\"".into(),
            Tok::End => "end of expression".into(),
        }
    }
}

/// A token with its 1-based character column.
type Spanned = (Tok, usize);

const OPS: [&str; 22] = [
    "**", "//", "<<", ">>", "<=", ">=", "==", "!=", "+", "-", "*", "/", "%", "<", ">", "&", "|",
    "^", "~",
    // Python's walrus and `=` are not expressions we accept; listed so they get a clear syntax error.
    ":=", "=", ":",
];

fn lex(src: &str) -> Result<Vec<Spanned>, ExprError> {
    let chars: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let column = i + 1;
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        if c.is_ascii_digit() || (c == '.' && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit()))
        {
            let start = i;
            let is_hex = c == '0' && matches!(chars.get(i + 1), Some('x' | 'X'));
            if is_hex {
                i += 2;
                while i < chars.len() && (chars[i].is_ascii_hexdigit() || chars[i] == '_') {
                    i += 1;
                }
            } else {
                while i < chars.len()
                    && (chars[i].is_ascii_digit() || chars[i] == '_' || chars[i] == '.')
                {
                    i += 1;
                }
                if i < chars.len() && matches!(chars[i], 'e' | 'E') {
                    let mut j = i + 1;
                    if j < chars.len() && matches!(chars[j], '+' | '-') {
                        j += 1;
                    }
                    if j < chars.len() && chars[j].is_ascii_digit() {
                        i = j;
                        while i < chars.len() && chars[i].is_ascii_digit() {
                            i += 1;
                        }
                    }
                }
            }
            let text: String = chars[start..i].iter().collect();
            let bad = || ExprError::BadNumber {
                text: text.clone(),
                column,
                expr: src.to_string(),
            };
            let clean = text.replace('_', "");
            let value = if is_hex {
                i64::from_str_radix(&clean[2..], 16)
                    .map(Value::Int)
                    .map_err(|_| bad())?
            } else if clean.contains(['.', 'e', 'E']) {
                Value::Float(clean.parse::<f64>().map_err(|_| bad())?)
            } else {
                match clean.parse::<i64>() {
                    Ok(v) => Value::Int(v),
                    // Bigger than 64 bits: Python would keep an exact int; continue as a float.
                    Err(_) => Value::Float(clean.parse::<f64>().map_err(|_| bad())?),
                }
            };
            // A number directly followed by a letter (`2x`) is an error in Python too.
            if i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                return Err(bad());
            }
            out.push((Tok::Num(value), column));
            continue;
        }
        if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            out.push((Tok::Ident(chars[start..i].iter().collect()), column));
            continue;
        }
        match c {
            '(' => out.push((Tok::LParen, column)),
            ')' => out.push((Tok::RParen, column)),
            ',' => out.push((Tok::Comma, column)),
            '.' => out.push((Tok::Dot, column)),
            _ => {
                let rest: String = chars[i..chars.len().min(i + 2)].iter().collect();
                let Some(op) = OPS.iter().find(|op| rest.starts_with(**op)) else {
                    return Err(ExprError::UnexpectedChar {
                        ch: c,
                        column,
                        expr: src.to_string(),
                    });
                };
                out.push((Tok::Op(op), column));
                i += op.chars().count();
                continue;
            }
        }
        i += 1;
    }
    out.push((Tok::End, chars.len() + 1));
    Ok(out)
}

// ---------------------------------------------------------------------------------------------------------
// Parser: recursive descent following Python's expression grammar.

struct Parser<'a> {
    src: &'a str,
    tokens: Vec<Spanned>,
    pos: usize,
    /// Current nesting of recursive rules, bounded by [`MAX_DEPTH`] so no input can exhaust the stack.
    depth: usize,
}

const KEYWORDS: [&str; 7] = ["if", "else", "and", "or", "not", "True", "False"];

impl Parser<'_> {
    fn peek(&self) -> &Tok {
        &self.tokens[self.pos.min(self.tokens.len() - 1)].0
    }

    fn column(&self) -> usize {
        self.tokens[self.pos.min(self.tokens.len() - 1)].1
    }

    fn bump(&mut self) -> Tok {
        let t = self.peek().clone();
        if self.pos < self.tokens.len() - 1 {
            self.pos += 1;
        }
        t
    }

    /// Runs a recursive rule one level deeper.
    fn nested(
        &mut self,
        rule: fn(&mut Self) -> Result<Node, ExprError>,
    ) -> Result<Node, ExprError> {
        self.depth += 1;
        let r = if self.depth > MAX_DEPTH {
            Err(ExprError::TooComplex(format!(
                "nested deeper than {MAX_DEPTH} levels at column {}",
                self.column()
            )))
        } else {
            rule(self)
        };
        self.depth -= 1;
        r
    }

    fn is_keyword(&self, kw: &str) -> bool {
        matches!(self.peek(), Tok::Ident(s) if s == kw)
    }

    fn is_op(&self, op: &str) -> bool {
        matches!(self.peek(), Tok::Op(o) if *o == op)
    }

    fn syntax(&self, expected: &str) -> ExprError {
        ExprError::Syntax {
            expected: expected.to_string(),
            found: self.peek().describe(),
            column: self.column(),
            expr: self.src.to_string(),
        }
    }

    fn expect_end(&self) -> Result<(), ExprError> {
        if *self.peek() == Tok::End {
            Ok(())
        } else {
            Err(self.syntax("an operator or end of expression"))
        }
    }

    /// test := or_test ['if' or_test 'else' test]
    fn test(&mut self) -> Result<Node, ExprError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(ExprError::TooComplex(format!(
                "nested deeper than {MAX_DEPTH} levels at column {}",
                self.column()
            )));
        }
        let r = self.test_inner();
        self.depth -= 1;
        r
    }

    fn test_inner(&mut self) -> Result<Node, ExprError> {
        let then = self.or_test()?;
        if !self.is_keyword("if") {
            return Ok(then);
        }
        self.bump();
        let cond = self.or_test()?;
        if !self.is_keyword("else") {
            return Err(self.syntax("\"else\""));
        }
        self.bump();
        let otherwise = self.test()?;
        Ok(Node::IfElse {
            cond: Box::new(cond),
            then: Box::new(then),
            otherwise: Box::new(otherwise),
        })
    }

    fn or_test(&mut self) -> Result<Node, ExprError> {
        let mut left = self.and_test()?;
        while self.is_keyword("or") {
            self.bump();
            let right = self.and_test()?;
            left = Node::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and_test(&mut self) -> Result<Node, ExprError> {
        let mut left = self.not_test()?;
        while self.is_keyword("and") {
            self.bump();
            let right = self.not_test()?;
            left = Node::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn not_test(&mut self) -> Result<Node, ExprError> {
        if self.is_keyword("not") {
            self.bump();
            return Ok(Node::Not(Box::new(self.nested(Self::not_test)?)));
        }
        self.comparison()
    }

    fn comparison(&mut self) -> Result<Node, ExprError> {
        let first = self.bit_or()?;
        let mut rest = Vec::new();
        loop {
            let op = match self.peek() {
                Tok::Op("<") => CmpOp::Lt,
                Tok::Op("<=") => CmpOp::Le,
                Tok::Op(">") => CmpOp::Gt,
                Tok::Op(">=") => CmpOp::Ge,
                Tok::Op("==") => CmpOp::Eq,
                Tok::Op("!=") => CmpOp::Ne,
                _ => break,
            };
            self.bump();
            rest.push((op, self.bit_or()?));
        }
        if rest.is_empty() {
            Ok(first)
        } else {
            Ok(Node::Compare(Box::new(first), rest))
        }
    }

    fn binary_level(
        &mut self,
        ops: &[(&str, BinOp)],
        next: fn(&mut Self) -> Result<Node, ExprError>,
    ) -> Result<Node, ExprError> {
        let mut left = next(self)?;
        'outer: loop {
            for (text, op) in ops {
                if self.is_op(text) {
                    self.bump();
                    let right = next(self)?;
                    left = Node::Binary(*op, Box::new(left), Box::new(right));
                    continue 'outer;
                }
            }
            return Ok(left);
        }
    }

    fn bit_or(&mut self) -> Result<Node, ExprError> {
        self.binary_level(&[("|", BinOp::BitOr)], Self::bit_xor)
    }

    fn bit_xor(&mut self) -> Result<Node, ExprError> {
        self.binary_level(&[("^", BinOp::BitXor)], Self::bit_and)
    }

    fn bit_and(&mut self) -> Result<Node, ExprError> {
        self.binary_level(&[("&", BinOp::BitAnd)], Self::shift)
    }

    fn shift(&mut self) -> Result<Node, ExprError> {
        self.binary_level(&[("<<", BinOp::Shl), (">>", BinOp::Shr)], Self::arith)
    }

    fn arith(&mut self) -> Result<Node, ExprError> {
        self.binary_level(&[("+", BinOp::Add), ("-", BinOp::Sub)], Self::term)
    }

    fn term(&mut self) -> Result<Node, ExprError> {
        self.binary_level(
            &[
                ("*", BinOp::Mul),
                ("//", BinOp::FloorDiv),
                ("/", BinOp::Div),
                ("%", BinOp::Mod),
            ],
            Self::factor,
        )
    }

    /// factor := ('+'|'-'|'~') factor | power
    fn factor(&mut self) -> Result<Node, ExprError> {
        let op = match self.peek() {
            Tok::Op("-") => UnOp::Neg,
            Tok::Op("+") => UnOp::Pos,
            Tok::Op("~") => UnOp::Invert,
            _ => return self.power(),
        };
        self.bump();
        Ok(Node::Unary(op, Box::new(self.nested(Self::factor)?)))
    }

    /// power := primary ['**' factor]
    fn power(&mut self) -> Result<Node, ExprError> {
        let base = self.primary()?;
        if self.is_op("**") {
            self.bump();
            let exp = self.nested(Self::factor)?;
            return Ok(Node::Binary(BinOp::Pow, Box::new(base), Box::new(exp)));
        }
        Ok(base)
    }

    fn primary(&mut self) -> Result<Node, ExprError> {
        let column = self.column();
        let start = self.pos;
        match self.bump() {
            Tok::Num(v) => Ok(Node::Const(v)),
            Tok::LParen => {
                let inner = self.test()?;
                if *self.peek() != Tok::RParen {
                    return Err(self.syntax("\")\""));
                }
                self.bump();
                Ok(inner)
            }
            Tok::Ident(first) => {
                match first.as_str() {
                    "True" => return Ok(Node::Const(Value::Bool(true))),
                    "False" => return Ok(Node::Const(Value::Bool(false))),
                    kw if KEYWORDS.contains(&kw) => {
                        self.pos = start;
                        return Err(self.syntax("a value"));
                    }
                    _ => {}
                }
                let mut name = first;
                while *self.peek() == Tok::Dot {
                    self.bump();
                    let part_pos = self.pos;
                    match self.bump() {
                        Tok::Ident(part) => {
                            name.push('.');
                            name.push_str(&part);
                        }
                        _ => {
                            self.pos = part_pos;
                            return Err(self.syntax("a name after \".\""));
                        }
                    }
                }
                if *self.peek() == Tok::LParen {
                    self.bump();
                    let func = Func::lookup(&name).ok_or_else(|| ExprError::UnknownFunction {
                        name: name.clone(),
                        column,
                        expr: self.src.to_string(),
                    })?;
                    let mut args = Vec::new();
                    if *self.peek() != Tok::RParen {
                        loop {
                            args.push(self.test()?);
                            if *self.peek() == Tok::Comma {
                                self.bump();
                                if *self.peek() == Tok::RParen {
                                    break;
                                }
                                continue;
                            }
                            break;
                        }
                    }
                    if *self.peek() != Tok::RParen {
                        return Err(self.syntax("\",\" or \")\""));
                    }
                    self.bump();
                    let (min, max, text) = func.arity();
                    if args.len() < min || args.len() > max {
                        return Err(ExprError::Arity {
                            name,
                            expected: text,
                            found: args.len(),
                            column,
                            expr: self.src.to_string(),
                        });
                    }
                    return Ok(Node::Call(func, args));
                }
                let var = Var::lookup(&name).ok_or_else(|| ExprError::UnknownName {
                    name,
                    column,
                    expr: self.src.to_string(),
                })?;
                Ok(Node::Var(var))
            }
            _ => {
                self.pos = start;
                Err(self.syntax("a value"))
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------------------
// Evaluation with Python's numeric semantics.

fn eval(node: &Node, inp: &Inputs) -> Result<Value, ExprError> {
    Ok(match node {
        Node::Const(v) => *v,
        Node::Var(v) => match v {
            Var::BanTime => inp.ban_time,
            Var::BanCount => Value::Int(inp.ban_count),
            Var::BanFactor => inp.ban_factor,
            Var::MathE => Value::Float(std::f64::consts::E),
            Var::MathPi => Value::Float(std::f64::consts::PI),
        },
        Node::Unary(op, a) => unary(*op, eval(a, inp)?)?,
        Node::Binary(op, a, b) => binary(*op, eval(a, inp)?, eval(b, inp)?)?,
        Node::Compare(first, rest) => {
            let mut left = eval(first, inp)?;
            for (op, n) in rest {
                let right = eval(n, inp)?;
                if !compare(*op, left, right) {
                    return Ok(Value::Bool(false));
                }
                left = right;
            }
            Value::Bool(true)
        }
        Node::And(a, b) => {
            let l = eval(a, inp)?;
            if l.truthy() { eval(b, inp)? } else { l }
        }
        Node::Or(a, b) => {
            let l = eval(a, inp)?;
            if l.truthy() { l } else { eval(b, inp)? }
        }
        Node::Not(a) => Value::Bool(!eval(a, inp)?.truthy()),
        Node::IfElse {
            cond,
            then,
            otherwise,
        } => {
            if eval(cond, inp)?.truthy() {
                eval(then, inp)?
            } else {
                eval(otherwise, inp)?
            }
        }
        Node::Call(f, args) => {
            let vals = args
                .iter()
                .map(|a| eval(a, inp))
                .collect::<Result<Vec<_>, _>>()?;
            call(*f, &vals)?
        }
    })
}

fn unary(op: UnOp, v: Value) -> Result<Value, ExprError> {
    Ok(match (op, v) {
        (UnOp::Pos, Value::Bool(b)) => Value::Int(i64::from(b)),
        (UnOp::Pos, v) => v,
        (UnOp::Neg, Value::Float(f)) => Value::Float(-f),
        (UnOp::Neg, v) => {
            let i = v.as_int().unwrap_or_default();
            i.checked_neg()
                .map(Value::Int)
                .unwrap_or(Value::Float(-(i as f64)))
        }
        (UnOp::Invert, v) => match v.as_int() {
            Some(i) => Value::Int(!i),
            None => {
                return Err(ExprError::Type(
                    "bad operand type for unary ~: 'float'".into(),
                ));
            }
        },
    })
}

fn int_or_float(r: Option<i64>, fallback: f64) -> Value {
    r.map(Value::Int).unwrap_or(Value::Float(fallback))
}

fn binary(op: BinOp, a: Value, b: Value) -> Result<Value, ExprError> {
    let ints = a.as_int().zip(b.as_int());
    let (x, y) = (a.as_f64(), b.as_f64());
    Ok(match op {
        BinOp::Add => match ints {
            Some((i, j)) => int_or_float(i.checked_add(j), x + y),
            None => Value::Float(x + y),
        },
        BinOp::Sub => match ints {
            Some((i, j)) => int_or_float(i.checked_sub(j), x - y),
            None => Value::Float(x - y),
        },
        BinOp::Mul => match ints {
            Some((i, j)) => int_or_float(i.checked_mul(j), x * y),
            None => Value::Float(x * y),
        },
        BinOp::Div => {
            if y == 0.0 {
                return Err(ExprError::DivisionByZero);
            }
            Value::Float(x / y)
        }
        BinOp::FloorDiv => {
            if y == 0.0 {
                return Err(ExprError::DivisionByZero);
            }
            match ints {
                Some((i, j)) => int_or_float(
                    i.checked_div_euclid(j).map(|_| floor_div(i, j)),
                    (x / y).floor(),
                ),
                None => Value::Float((x / y).floor()),
            }
        }
        BinOp::Mod => {
            if y == 0.0 {
                return Err(ExprError::DivisionByZero);
            }
            match ints {
                Some((i, j)) => match i.checked_rem(j) {
                    Some(r) => Value::Int(if r != 0 && ((r < 0) != (j < 0)) {
                        r + j
                    } else {
                        r
                    }),
                    None => Value::Int(0),
                },
                None => {
                    let r = x - y * (x / y).floor();
                    Value::Float(r)
                }
            }
        }
        BinOp::Pow => match ints {
            Some((i, j)) if j >= 0 => {
                let r = u32::try_from(j).ok().and_then(|e| i.checked_pow(e));
                int_or_float(r, x.powf(y))
            }
            _ => {
                if x == 0.0 && y < 0.0 {
                    return Err(ExprError::DivisionByZero);
                }
                if x < 0.0 && y.fract() != 0.0 {
                    return Err(ExprError::Math(format!("{a} ** {b} has no real result")));
                }
                Value::Float(x.powf(y))
            }
        },
        BinOp::Shl | BinOp::Shr | BinOp::BitAnd | BinOp::BitOr | BinOp::BitXor => {
            let Some((i, j)) = ints else {
                let sym = match op {
                    BinOp::Shl => "<<",
                    BinOp::Shr => ">>",
                    BinOp::BitAnd => "&",
                    BinOp::BitOr => "|",
                    _ => "^",
                };
                return Err(ExprError::Type(format!(
                    "unsupported operand type(s) for {sym}: '{}' and '{}'",
                    a.type_name(),
                    b.type_name()
                )));
            };
            match op {
                BinOp::Shl | BinOp::Shr => {
                    if j < 0 {
                        return Err(ExprError::Math("negative shift count".into()));
                    }
                    if op == BinOp::Shr {
                        Value::Int(if j >= 64 {
                            if i < 0 { -1 } else { 0 }
                        } else {
                            i >> j
                        })
                    } else {
                        // Exact while it fits; beyond 64 bits continue as a float (Python: big int).
                        let exact = u32::try_from(j)
                            .ok()
                            .filter(|s| *s < 63)
                            .and_then(|s| i.checked_mul(1i64 << s));
                        int_or_float(exact, x * 2f64.powf(y))
                    }
                }
                BinOp::BitAnd => Value::Int(i & j),
                BinOp::BitOr => Value::Int(i | j),
                _ => Value::Int(i ^ j),
            }
        }
    })
}

/// Python's floor division for integers (`j != 0`, no overflow: checked by the caller).
fn floor_div(i: i64, j: i64) -> i64 {
    let q = i / j;
    if (i % j != 0) && ((i < 0) != (j < 0)) {
        q - 1
    } else {
        q
    }
}

fn compare(op: CmpOp, a: Value, b: Value) -> bool {
    if let Some((i, j)) = a.as_int().zip(b.as_int()) {
        return match op {
            CmpOp::Lt => i < j,
            CmpOp::Le => i <= j,
            CmpOp::Gt => i > j,
            CmpOp::Ge => i >= j,
            CmpOp::Eq => i == j,
            CmpOp::Ne => i != j,
        };
    }
    let (x, y) = (a.as_f64(), b.as_f64());
    match op {
        CmpOp::Lt => x < y,
        CmpOp::Le => x <= y,
        CmpOp::Gt => x > y,
        CmpOp::Ge => x >= y,
        CmpOp::Eq => x == y,
        CmpOp::Ne => x != y,
    }
}

/// Rounds half to even, as Python's `round()` does.
pub(crate) fn round_half_even(x: f64) -> f64 {
    let r = x.round();
    if (x - x.trunc()).abs() == 0.5 {
        2.0 * (x / 2.0).round()
    } else {
        r
    }
}

fn to_int(x: f64, what: &str) -> Result<Value, ExprError> {
    if !x.is_finite() {
        return Err(ExprError::Math(format!(
            "cannot convert {x} to integer in {what}()"
        )));
    }
    Ok(Value::from_f64(x)
        .as_int()
        .map(Value::Int)
        .unwrap_or(Value::Float(x)))
}

fn call(f: Func, args: &[Value]) -> Result<Value, ExprError> {
    let x = args.first().map(|v| v.as_f64()).unwrap_or_default();
    let domain = |name: &str| ExprError::Math(format!("math domain error in math.{name}({x})"));
    Ok(match f {
        Func::Float => Value::Float(x),
        Func::Int => match args[0] {
            Value::Float(v) => to_int(v.trunc(), "int")?,
            v => Value::Int(v.as_int().unwrap_or_default()),
        },
        Func::Abs => match args[0] {
            Value::Float(v) => Value::Float(v.abs()),
            v => {
                let i = v.as_int().unwrap_or_default();
                int_or_float(i.checked_abs(), (i as f64).abs())
            }
        },
        Func::Round => match args[0] {
            Value::Float(v) => to_int(round_half_even(v), "round")?,
            v => Value::Int(v.as_int().unwrap_or_default()),
        },
        Func::Min | Func::Max => {
            let mut best = args[0];
            for v in &args[1..] {
                let better = if f == Func::Min {
                    compare(CmpOp::Lt, *v, best)
                } else {
                    compare(CmpOp::Gt, *v, best)
                };
                if better {
                    best = *v;
                }
            }
            best
        }
        Func::Exp => {
            let r = x.exp();
            if !r.is_finite() {
                return Err(ExprError::Math(format!(
                    "math range error in math.exp({x})"
                )));
            }
            Value::Float(r)
        }
        Func::Log => {
            if x <= 0.0 {
                return Err(domain("log"));
            }
            match args.get(1) {
                None => Value::Float(x.ln()),
                Some(base) => {
                    let b = base.as_f64();
                    if b <= 0.0 {
                        return Err(domain("log"));
                    }
                    if b == 1.0 {
                        return Err(ExprError::DivisionByZero);
                    }
                    Value::Float(x.ln() / b.ln())
                }
            }
        }
        Func::Log2 => {
            if x <= 0.0 {
                return Err(domain("log2"));
            }
            Value::Float(x.log2())
        }
        Func::Log10 => {
            if x <= 0.0 {
                return Err(domain("log10"));
            }
            Value::Float(x.log10())
        }
        Func::Sqrt => {
            if x < 0.0 {
                return Err(domain("sqrt"));
            }
            Value::Float(x.sqrt())
        }
        Func::Pow => {
            let y = args[1].as_f64();
            let r = x.powf(y);
            if r.is_nan() || (x == 0.0 && y < 0.0) {
                return Err(domain("pow"));
            }
            if !r.is_finite() {
                return Err(ExprError::Math(format!(
                    "math range error in math.pow({x}, {y})"
                )));
            }
            Value::Float(r)
        }
        Func::Floor => to_int(x.floor(), "math.floor")?,
        Func::Ceil => to_int(x.ceil(), "math.ceil")?,
        Func::Fabs => Value::Float(x.abs()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs(time: f64, count: i64, factor: f64) -> Inputs {
        Inputs {
            ban_time: Value::from_f64(time),
            ban_count: count,
            ban_factor: Value::from_f64(factor),
        }
    }

    fn ev(src: &str) -> Value {
        Expr::parse(src)
            .unwrap_or_else(|e| panic!("{src}: {e}"))
            .eval_value(&inputs(600.0, 3, 1.0))
            .unwrap_or_else(|e| panic!("{src}: {e}"))
    }

    #[test]
    fn precedence_matches_python() {
        assert_eq!(ev("1 + 2 * 3"), Value::Int(7));
        assert_eq!(ev("(1 + 2) * 3"), Value::Int(9));
        assert_eq!(ev("2 ** 3 ** 2"), Value::Int(512));
        assert_eq!(ev("-2 ** 2"), Value::Int(-4));
        assert_eq!(ev("2 ** -1"), Value::Float(0.5));
        assert_eq!(ev("1 << 2 + 1"), Value::Int(8));
        assert_eq!(ev("1 | 2 ^ 3 & 1"), Value::Int(1 | (2 ^ (3 & 1))));
        assert_eq!(ev("7 // 2"), Value::Int(3));
        assert_eq!(ev("-7 // 2"), Value::Int(-4));
        assert_eq!(ev("-7 % 3"), Value::Int(2));
        assert_eq!(ev("7 % -3"), Value::Int(-2));
        assert_eq!(ev("7 / 2"), Value::Float(3.5));
        assert_eq!(ev("1 if 0 else 2 if 1 else 3"), Value::Int(2));
        assert_eq!(ev("1 < 2 < 3"), Value::Bool(true));
        assert_eq!(ev("3 > 2 > 2"), Value::Bool(false));
        assert_eq!(ev("not 1 == 2"), Value::Bool(true));
        assert_eq!(ev("0 or 5"), Value::Int(5));
        assert_eq!(ev("2 and 0"), Value::Int(0));
        assert_eq!(ev("True + True"), Value::Int(2));
        assert_eq!(ev("~5"), Value::Int(-6));
        assert_eq!(ev("0x10 + 1_000"), Value::Int(1016));
        assert_eq!(ev("1e3 + .5"), Value::Float(1000.5));
    }

    #[test]
    fn names_and_functions() {
        assert_eq!(ev("ban.Time"), Value::Int(600));
        assert_eq!(ev("banTime + banCount"), Value::Int(603));
        assert_eq!(ev("ban . Count"), Value::Int(3));
        assert_eq!(ev("banFactor"), Value::Int(1));
        assert_eq!(ev("float(ban.Count + 1)"), Value::Float(4.0));
        assert_eq!(ev("int(2.9)"), Value::Int(2));
        assert_eq!(ev("int(-2.9)"), Value::Int(-2));
        assert_eq!(ev("min(3, 1.5, 2)"), Value::Float(1.5));
        assert_eq!(ev("max(3, 1.5, 2,)"), Value::Int(3));
        assert_eq!(ev("round(2.5)"), Value::Int(2));
        assert_eq!(ev("round(3.5)"), Value::Int(4));
        assert_eq!(ev("abs(-4)"), Value::Int(4));
        assert_eq!(ev("math.exp(0)"), Value::Float(1.0));
        assert_eq!(ev("math.log(math.e)"), Value::Float(1.0));
        assert_eq!(ev("math.log(8, 2)"), Value::Float(3.0));
        assert_eq!(ev("math.floor(2.5)"), Value::Int(2));
        assert_eq!(ev("math.ceil(2.5)"), Value::Int(3));
        assert_eq!(ev("math.sqrt(16)"), Value::Float(4.0));
        assert_eq!(ev("math.pow(2, 10)"), Value::Float(1024.0));
    }

    #[test]
    fn big_shifts_continue_as_float() {
        assert_eq!(ev("1 << 62"), Value::Int(1 << 62));
        assert_eq!(ev("1 << 70"), Value::Float(2f64.powi(70)));
        assert_eq!(ev("2 ** 70"), Value::Float(2f64.powi(70)));
    }

    #[test]
    fn unknown_name_is_reported_with_column() {
        let e = Expr::parse("ban.Time * bogus").unwrap_err();
        assert!(matches!(&e, ExprError::UnknownName { name, column: 12, .. } if name == "bogus"));
        let msg = e.to_string();
        assert!(msg.contains("unknown name \"bogus\" at column 12"), "{msg}");
        assert!(msg.contains("ban.Count"), "{msg}");
        let e = Expr::parse("ban.Tiem * 2").unwrap_err();
        assert!(matches!(&e, ExprError::UnknownName { name, column: 1, .. } if name == "ban.Tiem"));
        let e = Expr::parse("math.expo(1)").unwrap_err();
        assert!(matches!(&e, ExprError::UnknownFunction { name, .. } if name == "math.expo"));
        let e = Expr::parse("__import__('os')").unwrap_err();
        assert!(
            matches!(e, ExprError::UnexpectedChar { ch: '\'', .. }),
            "{e}"
        );
    }

    #[test]
    fn syntax_errors() {
        for bad in [
            "",
            "1 +",
            "(1",
            "1 if 2",
            "max(1)",
            "math.exp()",
            "1 2",
            "2x",
            "ban.",
            "a = 1",
            "1 if else 2",
            "not",
        ] {
            assert!(Expr::parse(bad).is_err(), "{bad:?} should not parse");
        }
        let e = Expr::parse("(1 + 2").unwrap_err();
        assert_eq!(
            e.to_string(),
            "syntax error at column 7 in \"(1 + 2\": expected \")\", found end of expression"
        );
    }

    #[test]
    fn hostile_inputs_are_refused_not_crashed() {
        let deep = format!("{}1{}", "(".repeat(500), ")".repeat(500));
        assert!(matches!(Expr::parse(&deep), Err(ExprError::TooComplex(_))));
        assert!(matches!(
            Expr::parse(&"-".repeat(500)),
            Err(ExprError::TooComplex(_))
        ));
        assert!(matches!(
            Expr::parse(&"not ".repeat(200)),
            Err(ExprError::TooComplex(_))
        ));
        assert!(matches!(
            Expr::parse(&"2**".repeat(200)),
            Err(ExprError::TooComplex(_))
        ));
        let long = format!("1{}", "+1".repeat(600));
        assert!(matches!(Expr::parse(&long), Err(ExprError::TooComplex(_))));
        let flat = format!("1{}", "+1".repeat(400));
        assert!(matches!(Expr::parse(&flat), Err(ExprError::TooComplex(_))));
        // Within the limits, a flat chain still evaluates.
        let flat = format!("1{}", "+1".repeat(60));
        assert_eq!(ev(&flat), Value::Int(61));
        let nested = format!("{}1{}", "(".repeat(30), ")".repeat(30));
        assert_eq!(ev(&nested), Value::Int(1));
        for junk in [
            "\0",
            "ban.Time;",
            "`",
            "1 ? 2 : 3",
            "lambda: 1",
            "[1]",
            "ban.Time.x",
            "1 if 2 else",
        ] {
            assert!(Expr::parse(junk).is_err(), "{junk:?}");
        }
    }

    #[test]
    fn runtime_errors() {
        let run = |s: &str| Expr::parse(s).unwrap().eval(&inputs(600.0, 1, 1.0));
        assert_eq!(run("1 / 0"), Err(ExprError::DivisionByZero));
        assert_eq!(run("1 // 0"), Err(ExprError::DivisionByZero));
        assert_eq!(run("1 % 0.0"), Err(ExprError::DivisionByZero));
        assert!(matches!(run("math.log(0)"), Err(ExprError::Math(_))));
        assert!(matches!(run("math.exp(1000)"), Err(ExprError::Math(_))));
        assert!(matches!(run("1.5 << 2"), Err(ExprError::Type(_))));
        assert!(matches!(run("1 << -1"), Err(ExprError::Math(_))));
        assert!(matches!(run("1e308 * 10"), Err(ExprError::NotFinite(_))));
    }

    #[test]
    fn constant_detection() {
        assert!(Expr::parse("2.0 / 2.885385").unwrap().is_constant());
        assert!(Expr::parse("math.e * 2").unwrap().is_constant());
        assert!(!Expr::parse("ban.Time").unwrap().is_constant());
    }

    #[test]
    fn python_rounding() {
        assert_eq!(round_half_even(0.5), 0.0);
        assert_eq!(round_half_even(1.5), 2.0);
        assert_eq!(round_half_even(2.5), 2.0);
        assert_eq!(round_half_even(-2.5), -2.0);
        assert_eq!(round_half_even(2.6), 3.0);
        assert_eq!(round_half_even(1.2), 1.0);
    }
}
